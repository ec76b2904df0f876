"""NNI Annotation: ``useAnnotation: true`` trials whose hyperparameters live in string comments.

``'''@nni.variable(nni.choice(0.1, 0.01), name=lr)'''`` before ``lr = 0.1`` makes ``lr`` a
tuned hyperparameter; ``@nni.function_choice(f(x), g(x), name=f)`` chooses among whole calls;
``@nni.report_intermediate_result(acc)`` / ``@nni.report_final_result(acc)`` report.  Because
the annotations are strings, the file still runs as plain Python.

:func:`expand_annotations` copies the trial code directory to a temporary folder, rewrites
every annotated ``.py`` file there and returns that folder with the search space generated
from the annotations; :func:`generate_search_space` returns only the space (``nniray ss_gen``).
"""
from .code_generator import AnnotationError, expand_annotations, generate_search_space, rewrite_source

__all__ = ["AnnotationError", "expand_annotations", "generate_search_space", "rewrite_source"]
