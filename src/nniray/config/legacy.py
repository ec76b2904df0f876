"""NNI's legacy v1 experiment config (``authorName``, ``trainingServicePlatform``,
``tuner.builtinTunerName``, ``trial.command``, ...) converted to the v2 schema.

:func:`convert_v1` maps every v1 key NNI documents to its v2 field (NNI's own conversion
rules); keys that v2 dropped (``authorName``, ``multiThread``, ``multiPhase``, ``versionCheck``,
``includeIntermediateResults`` ...) are reported in the returned notes; an unknown key, or a
platform section nniray cannot convert, is a :class:`ConfigError` naming it.
"""
from __future__ import annotations

from typing import Any

from nniray.errors import ConfigError

V1_MARKERS = ("authorName", "trainingServicePlatform", "trial", "maxExecDuration", "maxTrialNum", "searchSpacePath")
_DROPPED = ("authorName", "multiThread", "multiPhase", "versionCheck", "logCollection")
_TOP = {"experimentName": "experimentName", "trialConcurrency": "trialConcurrency",
        "maxExecDuration": "maxExperimentDuration", "maxTrialNum": "maxTrialNumber",
        "maxTrialDuration": "maxTrialDuration", "searchSpacePath": "searchSpaceFile",
        "useAnnotation": "useAnnotation", "nniManagerIp": "nniManagerIp", "logDir": "experimentWorkingDirectory",
        "logLevel": "logLevel", "debug": "debug"}
_MACHINE = {"ip": "host", "port": "port", "username": "user", "passwd": "password", "sshKeyPath": "sshKeyFile",
            "passphrase": "sshPassphrase", "gpuIndices": "gpuIndices", "maxTrialNumPerGpu": "maxTrialNumberPerGpu",
            "useActiveGpu": "useActiveGpu", "pythonPath": "pythonPath"}
_GPU = {"gpuIndices": "gpuIndices", "maxTrialNumPerGpu": "maxTrialNumberPerGpu", "useActiveGpu": "useActiveGpu"}


def is_v1(data: Any) -> bool:
    """A v1 file: it has a v1-only key (v2 has none of these at the top level)."""
    return isinstance(data, dict) and any(k in data for k in V1_MARKERS) and "trialCommand" not in data


def _algorithm(kind: str, section: Any, notes: list[str], out: dict) -> dict:
    if not isinstance(section, dict):
        raise ConfigError(f"{kind}: must be a mapping (v1 config), got {section!r}")
    builtin_key = {"tuner": "builtinTunerName", "assessor": "builtinAssessorName", "advisor": "builtinAdvisorName"}[kind]
    algo: dict[str, Any] = {}
    for key, value in section.items():
        if key == builtin_key:
            algo["name"] = value
        elif key == "classArgs":
            algo["classArgs"] = value
        elif key == "codeDir":
            algo["codeDirectory"] = value
        elif key in ("classFileName", "className"):
            continue  # combined below
        elif key == "gpuIndices" and kind != "assessor":
            out["tunerGpuIndices"] = value
        elif key in ("gpuNum", "includeIntermediateResults"):
            notes.append(f"{kind}.{key} has no v2 equivalent and is ignored")
        else:
            raise ConfigError(f"{kind}.{key}: unknown key of NNI's v1 {kind} section")
    if "className" in section:
        module = str(section.get("classFileName", "")).removesuffix(".py")
        algo["className"] = f"{module}.{section['className']}" if module else section["className"]
    return algo


def convert_v1(data: dict) -> tuple[dict, list[str]]:
    """``(v2 dict, notes)`` for a v1 config dict."""
    notes: list[str] = []
    out: dict[str, Any] = {}
    platform = data.get("trainingServicePlatform", "local")
    platform = {"pai": "openpai"}.get(platform, platform)
    ts: dict[str, Any] = {"platform": platform}
    for key, value in data.items():
        if key in _DROPPED:
            notes.append(f"{key} is not part of the v2 schema and was dropped")
        elif key in _TOP:
            out[_TOP[key]] = value
        elif key == "trainingServicePlatform":
            continue
        elif key in ("tuner", "assessor", "advisor"):
            out[key] = _algorithm(key, value, notes, out)
        elif key == "trial":
            if not isinstance(value, dict):
                raise ConfigError(f"trial: must be a mapping with command and codeDir, got {value!r}")
            for tk, tv in value.items():
                if tk == "command":
                    out["trialCommand"] = tv
                elif tk == "codeDir":
                    out["trialCodeDirectory"] = tv
                elif tk == "gpuNum":
                    out["trialGpuNumber"] = tv
                elif platform == "openpai" and tk in ("cpuNum", "memoryMB", "image", "virtualCluster",
                                                      "nniManagerNFSMountPath", "containerNFSMountPath",
                                                      "paiStorageConfigName"):
                    ts[{"cpuNum": "trialCpuNumber", "memoryMB": "trialMemorySize", "image": "dockerImage",
                        "virtualCluster": "virtualCluster", "nniManagerNFSMountPath": "localStorageMountPoint",
                        "containerNFSMountPath": "containerStorageMountPoint",
                        "paiStorageConfigName": "storageConfigName"}[tk]] = f"{tv}mb" if tk == "memoryMB" else tv
                else:
                    raise ConfigError(f"trial.{tk}: unknown key of NNI's v1 trial section (for platform {platform!r})")
        elif key == "localConfig":
            for lk, lv in (value or {}).items():
                if lk not in _GPU:
                    raise ConfigError(f"localConfig.{lk}: unknown key of NNI's v1 localConfig")
                ts[_GPU[lk]] = lv
        elif key == "machineList":
            machines = []
            for i, m in enumerate(value or []):
                if not isinstance(m, dict):
                    raise ConfigError(f"machineList[{i}]: must be a mapping, got {m!r}")
                unknown = [k for k in m if k not in _MACHINE]
                if unknown:
                    raise ConfigError(f"machineList[{i}].{unknown[0]}: unknown key of NNI's v1 machine list")
                machines.append({_MACHINE[k]: v for k, v in m.items()})
            ts["machineList"] = machines
        elif key == "remoteConfig":
            if "reuse" in (value or {}):
                ts["reuseMode"] = value["reuse"]
        elif key == "paiConfig":
            for pk, pv in (value or {}).items():
                mapped = {"userName": "username", "token": "token", "host": "host", "reuse": "reuseMode"}.get(pk)
                if mapped is None:
                    raise ConfigError(f"paiConfig.{pk}: unknown key of NNI's v1 paiConfig")
                ts[mapped] = pv
        elif key in ("kubeflowConfig", "frameworkcontrollerConfig", "amlConfig", "dltsConfig", "adlConfig",
                     "hybridConfig", "sharedStorage"):
            raise ConfigError(f"{key}: converting NNI's v1 {key} is not supported; write the v2 trainingService "
                              f"section by hand (see NNI's v2 reference)")
        else:
            raise ConfigError(f"{key}: unknown key of NNI's v1 config")
    out["trainingService"] = ts
    if "searchSpaceFile" not in out and not out.get("useAnnotation"):
        out.setdefault("searchSpace", {})
        notes.append("no searchSpacePath: an empty search space ({}) is used")
    return out, notes
