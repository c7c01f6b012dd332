"""Loading policy documents from a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import PolicyError
from agent.policy.loader import MAX_POLICY_FILE_BYTES, load_policy_dir

REPO_POLICIES = Path(__file__).resolve().parents[3] / "policies"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


VALID_AGENT = """
kind: agent
schema_version: 1
rules:
  - id: agent.silent
    desc: An agent missed heartbeats; tune missed_heartbeats.
    severity: high
    tags: [stable]
    match: {missed_heartbeats: 3}
"""


def test_repository_policies_load() -> None:
    """The policies a new site starts from are valid."""
    policy = load_policy_dir(REPO_POLICIES, required=["agent"])
    assert policy.section("agent") is not None
    assert policy.version.startswith("local-")


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A missing policy directory names itself and says what to do."""
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy_dir(tmp_path / "nope")


def test_missing_required_section_is_named(tmp_path: Path) -> None:
    """A detector's section that is absent is named in the error."""
    write(tmp_path, "agent.yaml", VALID_AGENT)
    with pytest.raises(PolicyError, match="networks"):
        load_policy_dir(tmp_path, required=["agent", "networks"])


def test_unknown_key_is_refused_with_its_location(tmp_path: Path) -> None:
    """A typo in a rule is reported with the file and the path to the key."""
    write(tmp_path, "agent.yaml", VALID_AGENT.replace("severity: high", "severty: high"))
    with pytest.raises(PolicyError, match=r"agent\.yaml: rules\.0\.severty"):
        load_policy_dir(tmp_path)


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    """A file of a kind no model reads is an error listing the known kinds."""
    write(tmp_path, "x.yaml", "kind: weather\nschema_version: 1\nrules: []\n")
    with pytest.raises(PolicyError, match="unknown policy kind 'weather'"):
        load_policy_dir(tmp_path)


def test_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    """Rule ids are stable identifiers, so each appears once."""
    rule = VALID_AGENT.split("rules:\n", 1)[1]
    write(tmp_path, "agent.yaml", VALID_AGENT + rule)
    with pytest.raises(PolicyError, match="appears twice"):
        load_policy_dir(tmp_path)


def test_first_tag_must_be_maturity(tmp_path: Path) -> None:
    """The first tag says how mature a rule is."""
    write(tmp_path, "agent.yaml", VALID_AGENT.replace("[stable]", "[agent]"))
    with pytest.raises(PolicyError, match="maturity"):
        load_policy_dir(tmp_path)


def test_malformed_yaml_is_a_clear_error(tmp_path: Path) -> None:
    """Broken YAML is reported, not a traceback."""
    write(tmp_path, "agent.yaml", "kind: [agent\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy_dir(tmp_path)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """A huge policy file is refused by size, so YAML parsing cannot exhaust memory."""
    write(tmp_path, "agent.yaml", "#" * (MAX_POLICY_FILE_BYTES + 1))
    with pytest.raises(PolicyError, match="larger than"):
        load_policy_dir(tmp_path)


def test_version_changes_with_content(tmp_path: Path) -> None:
    """The local policy version is a content hash, so any edit changes it."""
    write(tmp_path, "agent.yaml", VALID_AGENT)
    before = load_policy_dir(tmp_path).version
    write(tmp_path, "agent.yaml", VALID_AGENT.replace("high", "critical"))
    assert load_policy_dir(tmp_path).version != before
