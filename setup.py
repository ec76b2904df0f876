"""Maps the card's top-level folders into the one import namespace ``nniray``.

``src/nniray`` is ``nniray``; ``actors/``, ``strategies/``, ``training_services/`` and
``compression/`` are ``nniray.actors`` etc.  The package list is computed by walking
each root for ``__init__.py`` so a new subpackage needs no edit here.
"""
import os

from setuptools import setup

ROOTS = {
    "nniray": "src/nniray",
    "nniray.actors": "actors",
    "nniray.strategies": "strategies",
    "nniray.training_services": "training_services",
    "nniray.compression": "compression",
}


def _walk(pkg: str, root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
        if "__init__.py" not in filenames:
            dirnames[:] = []
            continue
        rel = os.path.relpath(dirpath, root)
        yield pkg if rel == "." else pkg + "." + rel.replace(os.sep, ".")


packages = sorted({p for pkg, root in ROOTS.items() for p in _walk(pkg, root)})
package_dir = {pkg: root for pkg, root in ROOTS.items()}

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"nniray": ["web/static/*", "web/static/js/*", "py.typed"]},
    include_package_data=True,
)
