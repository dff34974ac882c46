"""`wabulk segment list|count` and `wabulk campaign create --segment`, through click's runner,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from wabulk.cli import main
from wabulk.cli_common import Context
from wabulk.contacts import lists
from wabulk.contacts.service import opt_out, upsert_contact
from wabulk.db import Database
from wabulk.models import Campaign, Message
from wabulk.segments import service as segments
from wabulk.senders.service import SenderInput, create_sender


class Run:
    """`wabulk …` in this process on the test's database."""

    def __init__(self, database_url: str, instance: Path) -> None:
        self.env = {"WABULK_DATABASE_URL": database_url, "WABULK_INSTANCE_PATH": str(instance)}

    def __call__(self, *args: str) -> Result:
        ctx = Context()
        try:
            return CliRunner().invoke(
                main, list(args), env=self.env, obj=ctx, catch_exceptions=False
            )
        finally:
            if ctx._db is not None:  # the command's own engine: no connection left open
                ctx._db.dispose()


@pytest.fixture
def run(migrated_db: Database, database_url: str, tmp_path: Path) -> Run:
    return Run(database_url, tmp_path)


@pytest.fixture
def shop(migrated_db: Database) -> dict[str, int]:
    """Four contacts in "Buyers" (two in Pune, one of them opted out), one Pune contact
    elsewhere; a segment "Pune buyers"; a dry-run sender."""
    with migrated_db.session() as session:
        buyers = lists.create_list(session, None, "Buyers").id
        others = lists.create_list(session, None, "Others").id
        ids = {}
        for i, (city, list_id) in enumerate(
            [("Pune", buyers), ("Pune", buyers), ("Delhi", buyers), ("Pune", others)]
        ):
            contact, _ = upsert_contact(
                session,
                None,
                phone=f"+91981234500{i}",
                name=f"P{i}",
                attributes={"city": city},
                list_ids=[list_id],
            )
            ids[i] = contact.id
        opt_out(session, None, [ids[1]], "asked to stop")
        terms = {
            "match": "all",
            "conditions": [
                {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
                {"field": "list", "op": "in", "value": [buyers]},
            ],
        }
        segment = segments.create(session, None, "Pune buyers", None, terms).id
        create_sender(session, None, SenderInput(name="Rehearsal"))
    return {"segment": segment, **{f"contact{i}": c for i, c in ids.items()}}


def test_segment_list_and_count(run: Run, shop: dict[str, int]) -> None:
    listed = run("segment", "list")
    assert listed.exit_code == 0, listed.output
    assert "Pune buyers" in listed.output and "Buyers" in listed.output
    as_json = [json.loads(line) for line in run("segment", "list", "--json").output.splitlines()]
    assert [s["name"] for s in as_json] == ["Pune buyers"]

    counted = run("segment", "count", "pune BUYERS")  # any case
    assert counted.exit_code == 0, counted.output
    assert counted.output.startswith("Pune buyers: 1 contact(s).")
    data = json.loads(run("segment", "count", "Pune buyers", "--json").output)
    assert data == {
        "id": shop["segment"],
        "name": "Pune buyers",
        "count": 1,
        "capped": False,
        "summary": data["summary"],
    }
    capped = json.loads(run("segment", "count", "Pune buyers", "--json", "--cap", "1").output)
    assert (capped["count"], capped["capped"]) == (1, False)

    missing = run("segment", "count", "Nobody")
    assert missing.exit_code == 1 and "There is no segment called 'Nobody'" in missing.output


def test_campaign_create_to_a_segment_and_launch(
    run: Run,
    shop: dict[str, int],
    migrated_db: Database,
) -> None:
    created = run(
        "campaign",
        "create",
        "--name",
        "Pune offer",
        "--segment",
        "Pune buyers",
        "--sender",
        "Rehearsal",
        "--message",
        "Hello {{ name }}",
    )
    assert created.exit_code == 0, created.output
    campaign_id = int(created.output.strip())
    with migrated_db.session() as session:
        assert session.get(Campaign, campaign_id).segment_id == shop["segment"]
    launched = run("campaign", "launch", str(campaign_id))
    assert launched.exit_code == 0, launched.output
    assert "is running" in launched.output
    with migrated_db.session() as session:
        reached = set(
            session.scalars(select(Message.contact_id).where(Message.campaign_id == campaign_id))
        )
    assert reached == {shop["contact0"]}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--segment", "Pune buyers", "--list", "Buyers"], "either --list"),
        ([], "either --list"),
        (["--segment", "Nobody"], "There is no segment called 'Nobody'"),
    ],
)
def test_campaign_create_needs_lists_or_one_known_segment(
    run: Run,
    shop: dict[str, int],
    args: list[str],
    says: str,
) -> None:
    base = ["campaign", "create", "--name", "X", "--sender", "Rehearsal", "--message", "Hi"]
    result = run(*base, *args)
    assert result.exit_code != 0 and says in result.output, result.output
