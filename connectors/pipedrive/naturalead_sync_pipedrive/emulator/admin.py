"""The test-only admin interface under ``/_emulator/`` (no auth, no limits, not logged).

Bodies and answers are plain JSON (no Pipedrive envelope); a bad body or value is a 400
``{"error": …}``, an unknown record a 404. Routes (``{id}`` is a person id or a lead UUID):

==========================================  =================================================
``GET /_emulator/stats``                    :meth:`PipedriveEmulator.stats`
``GET /_emulator/requests?limit=N``         the last N request records (default 100)
``POST /_emulator/seed``                    ``{"persons", "same_update_time", "leads",
                                            "archived_leads"}`` → ``{"person_ids",
                                            "lead_ids"}`` (counts and id ranges)
``GET|POST /_emulator/clock``               ``{"advance": seconds}`` or ``{"set": iso}``
                                            → ``{"now": iso}``
``POST|DELETE /_emulator/faults``           ``{"faults": [...], "path_contains",
                                            "slow_seconds"}`` → ``{"pending"}``
``POST /_emulator/limits/reset``            refill budgets, lift blocks
``POST /_emulator/tokens``                  ``{"kind": "api_token"|"oauth", "token", ...}``
``DELETE /_emulator/tokens/{token}``        revoke
``POST /_emulator/persons``                 create (``{"name", ...fields}``) → v2 person
``GET|PATCH|DELETE /_emulator/persons/{id}``  read, change, soft-delete
``POST /_emulator/persons/{id}/merge``      ``{"into": winner_id}`` → the winner
``POST /_emulator/leads``                   create (``{"title", ...fields}``) → v1 lead
``GET|PATCH|DELETE /_emulator/leads/{id}``  read, change, delete
``POST /_emulator/leads/{id}/archive``      archive; ``.../convert`` converts (deletes)
``POST /_emulator/personFields``            ``{"name", "field_type", "options"}`` → ``{"key"}``
``POST /_emulator/dealFields``              the same for deal (lead) fields
==========================================  =================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from naturalead_sync.loopback import HTTPAnswer

from .protocol import Request, json_answer
from .store import NotFound

if TYPE_CHECKING:
    from .app import PipedriveEmulator

__all__ = ["Admin"]

Body = dict[str, Any]
Action = Callable[[Body, str], Any]


class Admin:
    """Routes ``/_emulator/...`` requests to the emulator's test hooks."""

    def __init__(self, emulator: PipedriveEmulator) -> None:
        self._emulator = emulator
        e = emulator
        routes: list[tuple[str, str, Action]] = [
            ("GET", "/stats", lambda body, _: e.stats()),
            ("GET", "/requests", self._requests),
            ("POST", "/seed", self._seed),
            ("GET", "/clock", lambda body, _: {"now": e.now().isoformat()}),
            ("POST", "/clock", self._clock),
            ("POST", "/faults", self._faults),
            ("DELETE", "/faults", self._clear_faults),
            ("POST", "/limits/reset", self._reset_limits),
            ("POST", "/tokens", self._token),
            ("DELETE", "/tokens/(.+)", lambda body, token: {"revoked": e.revoke_token(token)}),
            ("POST", "/persons", lambda body, _: e.create_person(**body)),
            ("GET", r"/persons/(\d+)", lambda body, pid: self._found(e.person(int(pid)))),
            ("PATCH", r"/persons/(\d+)", lambda body, pid: e.update_person(int(pid), **body)),
            ("DELETE", r"/persons/(\d+)", lambda body, pid: e.delete_person(int(pid))),
            (
                "POST",
                r"/persons/(\d+)/merge",
                lambda body, pid: e.merge_persons(int(pid), int(body["into"])),
            ),
            ("POST", "/leads", lambda body, _: e.create_lead(**body)),
            ("GET", "/leads/([^/]+)", lambda body, lid: self._found(e.lead(lid))),
            ("PATCH", "/leads/([^/]+)", lambda body, lid: e.update_lead(lid, **body)),
            ("DELETE", "/leads/([^/]+)", self._delete_lead),
            ("POST", "/leads/([^/]+)/archive", lambda body, lid: e.archive_lead(lid)),
            ("POST", "/leads/([^/]+)/convert", self._convert_lead),
            ("POST", "/personFields", lambda body, _: {"key": e.add_person_field(**body)}),
            ("POST", "/dealFields", lambda body, _: {"key": e.add_deal_field(**body)}),
        ]
        self._routes = [(method, re.compile(f"^{path}$"), act) for method, path, act in routes]

    def handle(self, request: Request) -> HTTPAnswer:
        """Answer one admin request."""
        path = request.path[len("/_emulator") :] or "/"
        try:
            body = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            return json_answer(400, {"error": "the body is not JSON"})
        if request.method == "GET":  # GET routes read their query as the body
            body = {name: values[-1] for name, values in request.query.items()}
        if not isinstance(body, dict):
            return json_answer(400, {"error": "the body must be a JSON object"})
        known = False
        for method, pattern, act in self._routes:
            found = pattern.match(path)
            known = known or found is not None
            if found is None or method != request.method:
                continue
            try:
                return json_answer(200, act(body, found.group(1) if pattern.groups else ""))
            except NotFound as missing:
                return json_answer(404, {"error": f"not found: {missing.args[0]}"})
            except (ValueError, TypeError, KeyError) as error:
                return json_answer(400, {"error": str(error)})
        return json_answer(
            405 if known else 404, {"error": f"no admin route {request.method} {path}"}
        )

    @staticmethod
    def _found(record: dict[str, Any] | None) -> dict[str, Any]:
        if record is None:
            raise NotFound("record")
        return record

    def _requests(self, body: Body, _: str) -> list[dict[str, Any]]:
        limit = int(body.get("limit", 100))
        return [asdict(record) for record in self._emulator.request_log[-limit:]]

    def _seed(self, body: Body, _: str) -> dict[str, Any]:
        e = self._emulator
        persons = e.seed_persons(
            int(body.get("persons", 0)), same_update_time=bool(body.get("same_update_time"))
        )
        leads = e.seed_leads(int(body.get("leads", 0)), archived=int(body.get("archived_leads", 0)))
        return {
            "persons": len(persons),
            "person_ids": [persons[0], persons[-1]] if persons else [],
            "leads": len(leads),
        }

    def _clear_faults(self, body: Body, _: str) -> dict[str, int]:
        self._emulator.clear_faults()
        return {"pending": 0}

    def _reset_limits(self, body: Body, _: str) -> dict[str, Any]:
        self._emulator.reset_limits()
        return self._emulator.limiter.state()

    def _delete_lead(self, body: Body, lead_id: str) -> dict[str, str]:
        self._emulator.delete_lead(lead_id)
        return {"id": lead_id, "status": "deleted"}

    def _convert_lead(self, body: Body, lead_id: str) -> dict[str, str]:
        self._emulator.convert_lead(lead_id)
        return {"id": lead_id, "status": "converted"}

    def _clock(self, body: Body, _: str) -> dict[str, str]:
        if "set" in body:
            now = self._emulator.set_time(datetime.fromisoformat(str(body["set"])))
        else:
            now = self._emulator.advance(float(body.get("advance", 0)))
        return {"now": now.isoformat()}

    def _faults(self, body: Body, _: str) -> dict[str, int]:
        faults = body.get("faults", [])
        if not isinstance(faults, list):
            raise ValueError("faults must be a list")
        slow = body.get("slow_seconds")
        self._emulator.script(
            *map(str, faults),
            path_contains=body.get("path_contains"),
            slow_seconds=None if slow is None else float(slow),
        )
        return {"pending": len(self._emulator.faults)}

    def _token(self, body: Body, _: str) -> dict[str, str]:
        kind, token = body.pop("kind", "api_token"), str(body.pop("token"))
        if kind == "api_token":
            self._emulator.add_api_token(token, **body)
        elif kind == "oauth":
            self._emulator.add_oauth_token(token, **body)
        else:
            raise ValueError("kind must be api_token or oauth")
        return {"token": token, "kind": kind}
