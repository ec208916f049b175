import base64

from switchboard_dev.broker import new_cluster_id


def test_cluster_ids_are_valid_and_never_look_like_options() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    for cid in ids:
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_min_insync_replicas_follows_the_replication_factor() -> None:
    from services.common.topics import CONTACTS_INBOUND

    assert CONTACTS_INBOUND.config(1)["min.insync.replicas"] == "1"
    assert CONTACTS_INBOUND.config(2)["min.insync.replicas"] == "1"
    assert CONTACTS_INBOUND.config(3)["min.insync.replicas"] == "2"
    assert "min.insync.replicas" not in CONTACTS_INBOUND.config(-1)


def test_topics_create_refuses_a_bad_replication_factor(capsys) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from services.cli import main

    for bad in ("0", "-2", "three"):
        with pytest.raises(SystemExit) as exit_info:
            main(["topics", "create", "--replication-factor", bad])
        assert exit_info.value.code == 2
        assert "--replication-factor" in capsys.readouterr().err
