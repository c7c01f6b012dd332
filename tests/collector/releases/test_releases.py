"""Agent releases on the collector, on SQLite and PostgreSQL: publish reads and signs the
package, targeting (canary, promote, rollback), what an agent may download, the ingest hint,
progress in ``release status`` and failed upgrades in ``GET /api/v1/agents``."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from agent.signing import Ed25519Signer
from agent.upgrade.release import check_release
from collector.cli import main as collector_main
from collector.errors import CollectorError, NotFoundError
from collector.policy.signing import load_signing_key, verifying_public_key
from collector.releases import store
from collector.releases.status import release_status
from collector.settings import CollectorSettings
from collector.store.database import Database
from tests.agent.upgrade.debs import make_deb
from tests.collector.conftest import (
    EnrolledAgent,
    TestClient,
    heartbeat,
    make_token,
    post_events,
)

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _enroll(client: TestClient, db: Database, hostname: str, group: str) -> EnrolledAgent:
    response = client.post("/api/v1/enroll", json={
        "token": make_token(db, group=group), "hostname": hostname, "agent_version": "0.13.0"})
    assert response.status_code == 201, response.text
    body = response.json()
    return EnrolledAgent(body["agent_id"], body["secret"], hostname)


def _publish(db: Database, data_dir: Path, version: str, group: str | None = None,
             arch: str = "amd64") -> store.ReleaseRow:
    return store.publish_release(db, make_deb(version, arch), load_signing_key(data_dir),
                                 group=group, author="ops", note="", created_at=NOW)


def _target(db: Database, group: str, arch: str = "amd64") -> str | None:
    with db.read() as conn:
        row = store.target_for(conn, group, arch)
    return None if row is None else row.version


def test_targeting_canary_promote_and_rollback(db: Database, signing: Path) -> None:
    public = load_signing_key(signing).public_key.text
    _publish(db, signing, "0.13.0")
    canary = _publish(db, signing, "0.14.0", group="canary")
    assert canary.group == "canary" and canary.action == "publish"
    assert _target(db, "canary") == "0.14.0"
    assert _target(db, "court-a") == "0.13.0"  # outside the canary: stays on N
    assert _target(db, "court-a", "arm64") is None
    promoted = store.promote(db, "0.14.0", public, author="ops", note="", created_at=NOW)
    assert [(r.action, r.group, r.source_id) for r in promoted] == [("promote", None, canary.id)]
    assert _target(db, "court-a") == "0.14.0"
    with pytest.raises(CollectorError, match="already targets all groups; nothing to promote"):
        store.promote(db, "0.14.0", public, author="ops", note="", created_at=NOW)
    with pytest.raises(NotFoundError):
        store.promote(db, "9.9.9", public, author="ops", note="", created_at=NOW)
    back = store.rollback(db, public, group=None, architecture=None, author="ops", note="",
                          created_at=NOW)
    assert [(r.version, r.action) for r in back] == [("0.13.0", "rollback")]
    assert _target(db, "court-a") == "0.13.0"
    # Rolling back goes down, never back up to the version rolled back from.
    _publish(db, signing, "0.15.0")
    store.rollback(db, public, group=None, architecture=None, author="ops", note="",
                   created_at=NOW)
    assert _target(db, "court-a") == "0.14.0"
    store.rollback(db, public, group="canary", architecture=None, author="ops", note="",
                   created_at=NOW)
    assert (_target(db, "canary"), _target(db, "court-a")) == ("0.13.0", "0.14.0")
    # One package stored once, however often it is targeted.
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM release_packages")).scalar() == 3


def test_a_rollback_needs_a_previous_release(db: Database, signing: Path) -> None:
    public = load_signing_key(signing).public_key.text
    with pytest.raises(CollectorError, match="no previous release to roll back to for all"):
        store.rollback(db, public, group=None, architecture=None, author="o", note="",
                       created_at=NOW)
    _publish(db, signing, "0.13.0")
    with pytest.raises(CollectorError, match="group court-a has no previous release"):
        store.rollback(db, public, group="court-a", architecture=None, author="o", note="",
                       created_at=NOW)


def test_publish_refuses_what_is_not_the_agent_package(db: Database, signing: Path) -> None:
    key = load_signing_key(signing)
    for body, message in ((b"hello", r"not a \.deb package \(no ar archive header\); publish"),
                          (make_deb("1.0", package="nginx"), "is named nginx, not")):
        with pytest.raises(CollectorError, match=message):
            store.publish_release(db, body, key, group=None, author="o", note="", created_at=NOW)
    assert store.list_releases(db) == []


def test_an_edited_package_is_never_retargeted(db: Database, signing: Path) -> None:
    public = load_signing_key(signing).public_key.text
    row = _publish(db, signing, "0.14.0", group="canary")
    with db.write() as conn:
        conn.execute(sa.update(store.release_packages).values(
            body=make_deb("0.14.0", payload=b"evil")))
    with pytest.raises(CollectorError, match="does not match its digest"):
        store.promote(db, "0.14.0", public, author="o", note="", created_at=NOW)
    with db.read() as conn, pytest.raises(CollectorError):
        store.verified_package(conn, row.sha256, Ed25519Signer().public_key.text)


def _package(client: TestClient, agent: EnrolledAgent, **params: str) -> Any:
    return client.get("/api/v1/release/package", params={"arch": "amd64", **params},
                      headers=agent.headers())


def test_an_agent_downloads_only_its_groups_release(
    client: TestClient, db: Database, signing: Path, settings: CollectorSettings,
) -> None:
    canary = _enroll(client, db, "ws-canary", "canary")
    other = _enroll(client, db, "ws-other", "court-a")
    _publish(db, signing, "0.13.0")
    _publish(db, signing, "0.14.0", group="canary")
    public = verifying_public_key(settings.data_dir)
    assert public is not None
    meta = client.get("/api/v1/release", params={"arch": "amd64"}, headers=canary.headers())
    assert meta.status_code == 200 and meta.json()["version"] == "0.14.0"
    assert meta.json()["group"] == "canary"
    served = _package(client, canary)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == meta.json()["sha256"]
    release = check_release(served.content, served.headers["X-Courtguard-Signature"], public,
                            running_version="0.13.0", architecture="amd64", group="canary",
                            target_group=served.headers["X-Courtguard-Release-Group"],
                            claimed_algorithm=served.headers["X-Courtguard-Signature-Algorithm"])
    assert release.control.version == "0.14.0"
    # The other group gets N; another architecture gets nothing; a stranger nothing at all.
    assert _package(client, other).headers["X-Courtguard-Release-Group"] == "*"
    assert client.get("/api/v1/release", params={"arch": "arm64"},
                      headers=other.headers()).status_code == 404
    assert client.get("/api/v1/release", params={"arch": "../x"},
                      headers=other.headers()).status_code == 422
    assert client.get("/api/v1/release", params={"arch": "amd64"}).status_code == 401
    # The running version's package, to go back to, is served whatever its target.
    back = _package(client, canary, version="0.13.0")
    assert back.status_code == 200 and back.headers["X-Courtguard-Release-Group"] == "*"
    assert _package(client, canary, version="0.12.0").status_code == 404
    status = {v["version"]: v for v in release_status(db)["versions"]}
    assert status["0.14.0"]["downloaded"] == 1 and status["0.14.0"]["targeted"] == 1
    assert status["0.13.0"]["targeted"] == 1 and status["0.13.0"]["installed"] == 2


def test_a_tampered_stored_package_is_not_served(
    client: TestClient, db: Database, signing: Path,
) -> None:
    agent = _enroll(client, db, "ws-1", "court-a")
    _publish(db, signing, "0.14.0")
    with db.write() as conn:
        conn.execute(sa.update(store.release_packages).values(signature="A" * 88))
    refused = _package(client, agent)
    assert refused.status_code == 503 and refused.json()["error"] == "release_untrusted"


def test_ingest_answers_hint_the_groups_newest_release(
    client: TestClient, db: Database, signing: Path,
) -> None:
    canary = _enroll(client, db, "ws-canary", "canary")
    other = _enroll(client, db, "ws-other", "court-a")
    answer = post_events(client, other, [heartbeat(other.agent_id, 1)])
    assert "release_sequence" not in answer.json()  # older agents never see the field
    first = _publish(db, signing, "0.13.0")
    second = _publish(db, signing, "0.14.0", group="canary")
    client.app.state.release_hints.invalidate()  # type: ignore[attr-defined]  # app.state is untyped
    assert post_events(client, canary, [heartbeat(canary.agent_id, 1)]
                       ).json()["release_sequence"] == second.id
    assert post_events(client, other, [heartbeat(other.agent_id, 2)]
                       ).json()["release_sequence"] == first.id


def test_progress_and_failed_upgrades_show(
    client: TestClient, db: Database, signing: Path, admin: dict[str, str],
) -> None:
    agents = [_enroll(client, db, f"ws-{i}", "court-a") for i in range(3)]
    _publish(db, signing, "0.13.0")
    _publish(db, signing, "0.14.0")
    for agent in agents:
        assert _package(client, agent).status_code == 200
    ok, broken, refusing = agents
    post_events(client, ok, [heartbeat(ok.agent_id, 1, agent_version="0.14.0")])
    post_events(client, broken, [heartbeat(broken.agent_id, 1, agent_version="0.13.0")])
    reported = client.post("/api/v1/release/report", headers=broken.headers(), json={
        "version": "0.14.0", "state": "failed", "reason_code": "not_healthy",
        "reason": "新版本未在 120 秒内报告正常"})
    assert reported.status_code == 204
    assert client.post("/api/v1/release/report", headers=refusing.headers(), json={
        "version": "0.14.0", "state": "refused", "reason_code": "bad_signature"}
    ).status_code == 204
    assert client.post("/api/v1/release/report", headers=refusing.headers(),
                       json={"version": "0.14.0", "state": "bogus"}).status_code == 422
    status = client.get("/api/v1/releases", headers=admin).json()
    newest = status["versions"][0]
    assert newest["version"] == "0.14.0"
    assert (newest["targeted"], newest["downloaded"], newest["installed"], newest["failed"],
            newest["refused"], newest["pending"]) == (3, 2, 1, 1, 1, 0)
    listing = {a["hostname"]: a for a in
               client.get("/api/v1/agents", headers=admin).json()["agents"]}
    assert listing["ws-1"]["agent_version"] == "0.13.0"
    assert listing["ws-1"]["upgrade_failed"]["version"] == "0.14.0"
    assert listing["ws-1"]["upgrade_failed"]["reason_code"] == "not_healthy"
    assert listing["ws-0"]["agent_version"] == "0.14.0"
    assert listing["ws-0"]["upgrade_failed"] is None


def test_release_cli(settings: CollectorSettings, db: Database, signing: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    n, n1 = tmp_path / "n.deb", tmp_path / "n1.deb"
    n.write_bytes(make_deb("0.13.0"))
    n1.write_bytes(make_deb("0.14.0"))
    assert collector_main(["release", "publish", str(n), *base]) == 0
    assert collector_main(["release", "publish", str(n1), "--group", "canary", *base]) == 0
    assert "0.14.0" in capsys.readouterr().out
    assert collector_main(["release", "promote", "0.14.0", *base]) == 0
    assert collector_main(["release", "rollback", *base]) == 0
    assert collector_main(["release", "status", *base]) == 0
    assert collector_main(["release", "list", *base]) == 0
    out = capsys.readouterr().out
    assert "promote" in out and "roll back" in out and "pending" in out
    # Notes are stored with the release and show as stored (the default ones are Chinese).
    said = [line for line in out.splitlines()
            if line.startswith(("agent version", "agents already", "version ", "record "))]
    assert len(said) == 5 and not re.search(r"[\u4e00-\u9fff]", "\n".join(said)), out
    assert collector_main(["release", "publish", str(tmp_path / "none.deb"), *base]) == 1
    assert collector_main(["release", "publish", str(tmp_path), *base]) == 1
    assert collector_main(["release", "promote", "7.7.7", *base]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "is a directory" in err
    assert "version 7.7.7 was never published" in err
    assert "Traceback" not in err


def test_a_chinese_locale_reads_the_release_commands_in_chinese(
        settings: CollectorSettings, db: Database, signing: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    base = ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]
    n, n1 = tmp_path / "n.deb", tmp_path / "n1.deb"
    n.write_bytes(make_deb("0.13.0"))
    n1.write_bytes(make_deb("0.14.0"))
    assert collector_main(["release", "publish", str(n), *base]) == 0
    assert collector_main(["release", "publish", str(n1), "--group", "canary", *base]) == 0
    out = capsys.readouterr().out
    assert "代理版本 0.14.0（" in out and "已签名发布（分组 canary，发布记录 " in out
    assert "代理将在下一次上报时得知并升级" in out
    assert collector_main(["release", "rollback", "--group", "canary", *base]) == 0
    assert "尚未升级的代理停留在或回到上一个版本" in capsys.readouterr().out
    assert collector_main(["release", "list", *base]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["记录", "版本", "架构", "目标分组", "操作", "时间(UTC)",
                                "发布人", "sha256", "说明"]
    assert "回滚" in lines[1] and "全部" in lines[3] and "发布" in lines[3]
    assert collector_main(["release", "status", *base]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["版本", "架构", "当前目标分组", "目标代理", "已下载", "已安装", "失败",
                      "拒绝", "待升级"]
    assert collector_main(["release", "publish", str(tmp_path), *base]) == 1
    assert "是目录：请给出代理 .deb 软件包文件" in capsys.readouterr().err
    # The store's refusals, a .deb's own among them, speak the locale too.
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"hello")
    assert collector_main(["release", "publish", str(junk), *base]) == 1
    assert collector_main(["release", "promote", "7.7.7", *base]) == 1
    assert collector_main(["release", "rollback", "--group", "court-b", *base]) == 1
    err = capsys.readouterr().err
    assert "不是 .deb 软件包（缺少 ar 归档头）；请发布由 packaging/agent 构建" in err, err
    assert "没有发布过版本 7.7.7" in err
    assert "分组 court-b 没有可回滚的上一个版本" in err
