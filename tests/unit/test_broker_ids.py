import base64

from services.common.broker import new_cluster_id


def test_cluster_ids_are_valid_and_never_look_like_options() -> None:
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    for cid in ids:
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
