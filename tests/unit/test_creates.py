"""Creating a test's children (controller/creates.py): ownership decides, errors are sorted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from locust_operator.controller.creates import (
    NameConflict,
    PermanentCreateError,
    TransientCreateError,
    create_children,
)
from locust_operator.controller.kube_api import ApiError


class Api:
    def __init__(self, fail: dict[str, Exception]) -> None:
        self.fail = fail
        self.created: list[str] = []

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if name in self.fail:
            raise self.fail[name]
        self.created.append(name)
        return obj

    async def read(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"ownerReferences": [{"controller": True, "uid": "mine"}]}}

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        raise AssertionError("not used")


OBJECTS = [{"kind": k, "metadata": {"name": n, "namespace": "ns"}}
           for k, n in (("Service", "s"), ("Job", "m"), ("Job", "w"))]


@pytest.mark.parametrize(("fail", "owner", "error", "created"), [
    ({}, "mine", None, ["s", "m", "w"]),
    ({"m": ApiError(409, "exists")}, "mine", None, ["s", "w"]),
    ({"m": ApiError(409, "exists")}, "someone", NameConflict, ["s"]),
    ({"s": ApiError(422, "invalid")}, "mine", PermanentCreateError, []),
    ({"w": ApiError(403, "forbidden")}, "mine", PermanentCreateError, ["s", "m"]),
    ({"m": ApiError(500, "etcd timeout")}, "mine", TransientCreateError, ["s"]),
    ({"s": OSError("connection refused")}, "mine", TransientCreateError, []),
])
def test_create_children(fail: dict[str, Exception], owner: str, error: type[Exception] | None,
                         created: list[str]) -> None:
    api = Api(fail)
    announced: list[str] = []

    async def on_created(obj: dict[str, Any]) -> None:
        announced.append(obj["metadata"]["name"])

    async def main() -> list[str]:
        return await create_children(api, OBJECTS, owner, on_created)

    if error is None:
        existing = asyncio.run(main())
        assert existing == [f"Job/{n}" for n in fail]
    else:
        with pytest.raises(error):
            asyncio.run(main())
    assert api.created == announced == created


def test_only_services_and_jobs_are_created() -> None:
    async def main() -> list[str]:
        async def on_created(obj: dict[str, Any]) -> None:
            pass
        return await create_children(Api({}), [{"kind": "ConfigMap", "metadata": {"name": "c"}}],
                                     "mine", on_created)

    with pytest.raises(PermanentCreateError, match="only Service, Job, Ingress, HTTPRoute"):
        asyncio.run(main())
