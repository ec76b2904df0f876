"""The local training service: the Ray nniray starts listens on loopback only, and starting it
leaves the user's process environment as it was."""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, os, time
import psutil
before = dict(os.environ)
from nniray.training_services.local import connect_ray, disconnect_ray
assert connect_ray(None, gpu_indices=[0]) is True
assert connect_ray(None) is False  # already attached: nothing started twice
time.sleep(1)
me = psutil.Process()
listen = []
for p in [me] + me.children(recursive=True):
    try:
        listen += [[p.name(), c.laddr.ip, c.laddr.port] for c in p.net_connections(kind="tcp")
                   if c.status == psutil.CONN_LISTEN]
    except psutil.Error:
        pass
ours = ("RAY_USAGE_STATS_ENABLED", "CUDA_VISIBLE_DEVICES", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS",
        "NNI_LOG_DIRECTORY")
changed = [k for k in ours if before.get(k) != os.environ.get(k)]
disconnect_ray()
print(json.dumps({"listen": listen, "changed": changed}))
"""


def test_local_ray_listens_on_loopback_only_and_leaves_the_environment_alone(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("RAY_ADDRESS", "RAY_USAGE_STATS_ENABLED", "CUDA_VISIBLE_DEVICES")}
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=240, cwd=tmp_path,
                       env=dict(env, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["listen"], "no listening socket found: the probe saw no Ray process"
    exposed = [x for x in out["listen"] if x[1] not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")]
    assert exposed == [], f"Ray servers listening beyond loopback: {exposed}"
    assert out["changed"] == []
