"""Operator settings: YAML file + environment, typed, failing with the setting's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from locust_operator.api.config import ConfigError, OperatorConfig, env_names, load_config


def test_defaults() -> None:
    config = load_config(env={})
    assert config == OperatorConfig()
    assert config.role_resources("master")["limits"]["memory"] == "1Gi"
    assert config.metricsExporter.image == "containersol/locust_exporter:v0.5.0"


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "jobTtlSecondsAfterFinished: 300\n"
        "metricsExporter: {enabled: true, port: 9000}\n"
        "workerResources: {requests: {cpu: '2'}}\n"
        "namespaces: [a, b]\n"
    )
    env = {"LOCUST_OPERATOR_METRICS_EXPORTER_ENABLED": "false",
           "LOCUST_OPERATOR_DEFAULT_RUNTIME_CLASS_NAME": "gvisor",
           "LOCUST_OPERATOR_LOG_FORMAT": "json"}
    config = load_config(path, env=env)
    assert config.jobTtlSecondsAfterFinished == 300
    assert config.metricsExporter.enabled is False
    assert config.metricsExporter.port == 9000
    assert config.defaultRuntimeClassName == "gvisor"
    assert config.role_resources("worker") == {"requests": {"cpu": "2"}}
    assert config.role_resources("master") == config.resources
    assert config.namespaces == ("a", "b")
    assert config.logFormat == "json"


def test_environment_lists_and_structures() -> None:
    config = load_config(env={"LOCUST_OPERATOR_NAMESPACES": "a, b",
                              "LOCUST_OPERATOR_MASTER_RESOURCES": "{limits: {cpu: '3'}}"})
    assert config.namespaces == ("a", "b")
    assert config.masterResources == {"limits": {"cpu": "3"}}


@pytest.mark.parametrize(("text", "env", "setting"), [
    ("jobTtlSecondsAfterFinished: -1", {}, "jobTtlSecondsAfterFinished"),
    ("jobTtlSecondsAfterFinished: soon", {}, "jobTtlSecondsAfterFinished"),
    ("podHealthGraceSeconds: true", {}, "podHealthGraceSeconds"),
    ("metricsExporter: {port: 70000}", {}, "metricsExporter.port"),
    ("metricsExporter: {pullPolicy: Sometimes}", {}, "metricsExporter.pullPolicy"),
    ("metricsExporter: {colour: red}", {}, "metricsExporter.colour"),
    ("metricsExporter: on", {}, "metricsExporter"),
    ("logFormat: xml", {}, "logFormat"),
    ("honourAffinity: maybe", {}, "honourAffinity"),
    ("resources: {requests: {cpu: lots}}", {}, "resources.requests.cpu"),
    ("resources: {wants: {cpu: 1}}", {}, "resources"),
    ("typo: 1", {}, "typo"),
    ("namespaces: [1, 2]", {}, "namespaces"),
    ("", {"LOCUST_OPERATOR_POD_HEALTH_GRACE_SECONDS": "2m"}, "podHealthGraceSeconds"),
    ("", {"LOCUST_OPERATOR_METRICS_EXPORTER_PORT": "0"}, "metricsExporter.port"),
    ("statsPollSeconds: -1", {}, "statsPollSeconds"),
    ("statsUrlTemplate: 'http://{pod}/stats'", {}, "statsUrlTemplate"),
    ("statsUrlTemplate: 'ftp://{service}/x'", {}, "statsUrlTemplate"),
    ("maxTestDurationSeconds: -1", {}, "maxTestDurationSeconds"),
    ("masterReads: {statsMaxBytes: 0}", {}, "masterReads.statsMaxBytes"),
    ("masterReads: {reportMaxBytes: 1MiB}", {}, "masterReads.reportMaxBytes"),
    ("", {"LOCUST_OPERATOR_MASTER_READS_TIMEOUT_SECONDS": "0"}, "masterReads.timeoutSeconds"),
    ("masterReads: {cap: 1}", {}, "masterReads.cap"),
])
def test_invalid_settings_name_the_setting(tmp_path: Path, text: str, env: dict[str, str],
                                           setting: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path, env=env)
    assert str(error.value).startswith(f"{setting}:"), str(error.value)


@pytest.mark.parametrize(("text", "words"), [("[1, 2]", "mapping"), ("a: [", "not valid YAML")])
def test_bad_config_file(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_config(path, env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "absent.yaml", env={})


def test_env_names_cover_every_setting() -> None:
    names = env_names()
    assert "LOCUST_OPERATOR_METRICS_EXPORTER_PULL_POLICY" in names
    assert "LOCUST_OPERATOR_JOB_TTL_SECONDS_AFTER_FINISHED" in names
    assert "LOCUST_OPERATOR_MASTER_READS_STATS_MAX_BYTES" in names
    assert "LOCUST_OPERATOR_MAX_TEST_DURATION_SECONDS" in names
    assert "LOCUST_OPERATOR_SCHEDULES" in names
    assert "LOCUST_OPERATOR_INIT_CONTAINERS_GIT_IMAGE" in names
    assert len(names) == len(set(names)) == 33
