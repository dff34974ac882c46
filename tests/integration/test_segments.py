"""Segments on SQLite and PostgreSQL: each condition against a set computed in Python."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.campaigns_support import make_sender
from tests.segments_support import NOW, World, build, expected, matches
from wabulk.campaigns import audience, lifecycle
from wabulk.campaigns.service import recipient_count
from wabulk.errors import Conflict, ValidationError
from wabulk.models import Campaign, CampaignStatus, Message, Sender
from wabulk.segments import compile, indexes, service, terms


def _conditions(world: World) -> list[dict]:
    first, second = world.campaign_ids
    lists = world.list_ids
    attr = [
        ("city", "eq", "pune"),
        ("city", "neq", "Pune"),
        ("city", "contains", "UN"),
        ("city", "not_contains", "pune"),
        ("city", "empty", None),
        ("city", "not_empty", None),
        ("city", "eq", "42"),
        ("due_amount", "gt", 500),
        ("due_amount", "gte", "500"),
        ("due_amount", "lt", 0),
        ("due_amount", "lte", 12.5),
        ("due_amount", "gt", 1000),
        ("last", "before", "2026-10-01"),
        ("last", "after", "2026-09-30"),
        ("last", "within_days", 90),
        ("last", "not_within_days", 90),
        ("missing_key", "empty", None),
    ]
    out: list[dict] = [{"field": "attribute", "key": k, "op": op, "value": v} for k, op, v in attr]
    out += [
        {"field": "list", "op": "in", "value": [lists[0]]},
        {"field": "list", "op": "in", "value": [lists[0], lists[1]]},
        {"field": "list", "op": "not_in", "value": [lists[2]]},
        {"field": "country", "op": "in", "value": ["IN"]},
        {"field": "country", "op": "not_in", "value": ["IN", "AE"]},
        {"field": "timezone", "op": "in", "value": ["Asia/Kolkata", "Asia/Dubai"]},
        {"field": "timezone", "op": "not_in", "value": ["Asia/Kolkata"]},
        {"field": "name", "op": "contains", "value": "asha"},
        {"field": "name", "op": "empty"},
        {"field": "name", "op": "not_empty"},
        {"field": "opt_in", "op": "eq", "value": "opted_back_in"},
        {"field": "opt_in", "op": "eq", "value": "never_opted_out"},
        {"field": "not_on_whatsapp", "op": "eq", "value": True},
        {"field": "not_on_whatsapp", "op": "eq", "value": False},
    ]
    for campaign_id in (first, second):
        for op in terms.OUTCOMES:
            out.append({"field": "outcome", "campaign_id": campaign_id, "op": op})
    out.append({"field": "outcome", "campaign_id": first, "op": "failed", "value": "131026"})
    out.append({"field": "outcome", "campaign_id": first, "op": "failed", "value": "DETAIL FOR"})
    return out


def _ids(session, query) -> set[int]:
    return {row[0] for row in session.execute(query)}


def test_each_condition_matches_the_hand_computed_set(migrated_db) -> None:
    world = build(migrated_db)
    with migrated_db.session() as session:
        nonempty = 0
        for raw in _conditions(world):
            checked = terms.validate({"match": "all", "conditions": [raw]})
            want = expected(world, checked, reachable=False)
            got = _ids(session, compile.members(checked, NOW))
            assert got == want, raw
            assert _ids(session, compile.reachable(checked, NOW)) == expected(world, checked), raw
            nonempty += bool(want)
        # The generated data exercise the conditions: most select somebody.
        assert nonempty >= len(_conditions(world)) - 6


def test_match_all_and_any_and_no_conditions(migrated_db) -> None:
    world = build(migrated_db)
    first = world.campaign_ids[0]
    combos = [
        [
            {"field": "list", "op": "in", "value": [world.list_ids[0]]},
            {"field": "attribute", "key": "last", "op": "within_days", "value": 90},
            {"field": "outcome", "campaign_id": first, "op": "delivered_not_read"},
        ],
        [
            {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
            {"field": "attribute", "key": "due_amount", "op": "gt", "value": 500},
        ],
        [
            {"field": "country", "op": "not_in", "value": ["IN"]},
            {"field": "opt_in", "op": "eq", "value": "opted_back_in"},
            {"field": "outcome", "campaign_id": first, "op": "replied"},
        ],
    ]
    with migrated_db.session() as session:
        everyone = terms.validate({"conditions": []})
        assert _ids(session, compile.reachable(everyone, NOW)) == expected(world, everyone)
        for conditions in combos:
            for match in ("all", "any"):
                checked = terms.validate({"match": match, "conditions": conditions})
                want = expected(world, checked)
                assert _ids(session, compile.reachable(checked, NOW)) == want, (match, conditions)
                assert service.count(session, checked, now=NOW) == (len(want), False)
                sample = service.sample(session, checked, now=NOW, n=5)
                assert [c.id for c in sample] == sorted(want)[:5]


def test_opted_out_contacts_are_never_members(migrated_db) -> None:
    world = build(migrated_db)
    opted = {p.id for p in world.people if p.opted_out}
    assert opted
    every_kind = terms.validate({"match": "any", "conditions": _conditions(world)[:20]})
    with migrated_db.session() as session:
        for checked in (every_kind, terms.validate({})):
            assert not _ids(session, compile.members(checked, NOW)) & opted
        # … but they are counted as left out, for the wizard.
        left_out = service.opted_out_count(session, terms.validate({}), now=NOW)
        assert left_out == len(opted)


def test_count_stops_at_the_cap(migrated_db) -> None:
    world = build(migrated_db)
    everyone = expected(world, {"conditions": []})
    with migrated_db.session() as session:
        assert service.count(session, {}, now=NOW, cap=10) == (10, True)
        assert service.count(session, {}, now=NOW, cap=len(everyone)) == (len(everyone), False)


def _segment_campaign(db, terms_: dict) -> tuple[int, int]:
    sender_id = make_sender(db)
    with db.session() as session:
        segment = service.create(session, None, "Pune buyers", "", terms_)
        campaign = Campaign(
            name="To a segment",
            body="Hello {{ name }}",
            segment_id=segment.id,
            senders=[session.get(Sender, sender_id)],
        )
        session.add(campaign)
        session.flush()
        return segment.id, campaign.id


def test_launch_to_a_segment_inserts_exactly_its_reachable_contacts(migrated_db) -> None:
    world = build(migrated_db)
    raw = {
        "match": "all",
        "conditions": [
            {"field": "attribute", "key": "due_amount", "op": "gte", "value": 0},
            {"field": "outcome", "campaign_id": world.campaign_ids[0], "op": "not_delivered"},
        ],
    }
    want = expected(world, terms.validate(raw))
    assert want
    segment_id, campaign_id = _segment_campaign(migrated_db, raw)
    with migrated_db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert recipient_count(session, campaign)[0] == len(want)
        lifecycle.launch(session, None, campaign_id, now=NOW)
    with migrated_db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign.total == len(want)
        assert campaign.audience_terms == terms.validate(raw)
        got = set(
            session.scalars(select(Message.contact_id).where(Message.campaign_id == campaign_id))
        )
        assert got == want
        # A segment still used by a live campaign cannot be deleted.
        with pytest.raises(Conflict):
            service.delete(session, None, segment_id)


def test_launch_to_a_segment_matching_nobody_says_so(migrated_db) -> None:
    build(migrated_db, n=20)
    raw = {"conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "Atlantis"}]}
    _, campaign_id = _segment_campaign(migrated_db, raw)
    with migrated_db.session() as session, pytest.raises(ValidationError) as refused:
        lifecycle.launch(session, None, campaign_id, now=NOW)
    assert "matches the segment" in str(refused.value)
    assert refused.value.field == "segment_id"


def test_due_by_zone_gives_each_timezone_its_own_time(migrated_db) -> None:
    world = build(migrated_db)
    _, campaign_id = _segment_campaign(migrated_db, {"conditions": []})
    kolkata, dubai = NOW + timedelta(hours=1), NOW + timedelta(hours=3)
    with migrated_db.session() as session:
        campaign = session.get(Campaign, campaign_id)
        n = audience.insert_messages(
            session,
            campaign,
            NOW,
            due_by_zone={"Asia/Kolkata": kolkata, "Asia/Dubai": dubai},
            now=NOW,
        )
        assert n == len(expected(world, {"conditions": []}))
        rows = session.execute(
            select(Message.contact_id, Message.next_attempt_at).where(
                Message.campaign_id == campaign_id
            )
        ).all()
    zone = {p.id: p.timezone for p in world.people}
    for contact_id, due in rows:
        assert due == {"Asia/Kolkata": kolkata, "Asia/Dubai": dubai}.get(zone[contact_id], NOW)


def test_lists_audience_still_counts_and_launches(migrated_db) -> None:
    world = build(migrated_db, n=40)
    with migrated_db.session() as session:
        n = audience.count(session, world.list_ids[:1])
        want = expected(
            world,
            terms.validate(
                {"conditions": [{"field": "list", "op": "in", "value": world.list_ids[:1]}]}
            ),
        )
        assert n == len(want)


def test_service_names_outcome_segments_and_refuses_duplicates(migrated_db) -> None:
    world = build(migrated_db, n=30)
    first = world.campaign_ids[0]
    with migrated_db.session() as session:
        made = service.outcome_segment(session, None, first, "delivered_not_read")
        assert made.name == "Did not read: Offer 0"
        again = service.outcome_segment(session, None, first, "delivered_not_read")
        assert again.id == made.id
        assert service.outcome_segment(session, None, first, "replied").name == "Replied: Offer 0"
        with pytest.raises(ValidationError) as clash:
            service.create(session, None, "did not read: offer 0", None, {})
        assert clash.value.field == "name"
        assert [s.name for s in service.list_all(session)] == [
            "Did not read: Offer 0",
            "Replied: Offer 0",
        ]
        assert terms.describe(made.terms, session) == "Received but did not read “Offer 0”"
        assert service.delete(session, None, made.id) == "Did not read: Offer 0"
        assert (
            session.scalar(
                select(func.count())
                .select_from(Campaign)
                .where(Campaign.status == CampaignStatus.COMPLETED)
            )
            == 2
        )


def _plan(session, query) -> str:
    """The database's plan for `query`, as text."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
        return "\n".join(r[0] for r in rows)
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


@pytest.mark.parametrize(
    ("key", "op", "value", "kind"),
    [
        ("due_amount", "gt", 500, "number"),
        ("city", "eq", "Pune", "lower"),
        ("last", "within_days", 90, "date"),
        ("last", "before", "2026-01-01", "date"),
    ],
)
def test_a_saved_segment_gets_an_index_its_query_uses(migrated_db, key, op, value, kind) -> None:
    world = build(migrated_db, n=60)
    raw = {"conditions": [{"field": "attribute", "key": key, "op": op, "value": value}]}
    with migrated_db.session() as session:
        service.create(session, None, "Indexed", None, raw)
    name = indexes.index_name(key, kind)
    with migrated_db.session() as session:
        conn = session.connection()
        assert name in indexes.existing(conn)
        if conn.dialect.name == "postgresql":
            # A few rows: the planner would rightly read the table; ask whether it can use
            # the index at all (its expression matches the query's).
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        checked = terms.validate(raw)
        assert name in _plan(session, compile.reachable(checked, NOW))
        # … and the answer is still the hand-computed one.
        assert _ids(session, compile.reachable(checked, NOW)) == expected(world, checked)


def test_segment_indexes_are_bounded(migrated_db, monkeypatch) -> None:
    build(migrated_db, n=5)
    monkeypatch.setattr(indexes, "MAX_INDEXES", 2)
    conditions = [{"field": "attribute", "key": f"k{i}", "op": "gt", "value": i} for i in range(4)]
    with migrated_db.session() as session:
        service.create(session, None, "Many", None, {"conditions": conditions})
    with migrated_db.session() as session:
        made = indexes.existing(session.connection())
        assert made == {indexes.index_name("k0", "number"), indexes.index_name("k1", "number")}


def test_a_rolled_back_save_makes_no_index(migrated_db) -> None:
    raw = {"conditions": [{"field": "attribute", "key": "zz", "op": "eq", "value": "x"}]}
    with pytest.raises(RuntimeError), migrated_db.session() as session:
        service.create(session, None, "Never saved", None, raw)
        raise RuntimeError("the request failed after the save")
    with migrated_db.session() as session:
        assert indexes.index_name("zz", "lower") not in indexes.existing(session.connection())
        service.create(session, None, "Saved", None, {})  # commits with nothing pending
    with migrated_db.session() as session:
        assert indexes.index_name("zz", "lower") not in indexes.existing(session.connection())


def test_an_indexed_attribute_drives_beside_a_list_and_an_outcome(migrated_db) -> None:
    world = build(migrated_db, n=60)
    raw = {
        "conditions": [
            {"field": "attribute", "key": "city", "op": "eq", "value": "Pune"},
            {"field": "list", "op": "in", "value": world.list_ids[:2]},
            {"field": "outcome", "campaign_id": world.campaign_ids[0], "op": "received"},
        ]
    }
    with migrated_db.session() as session:
        service.create(session, None, "Pune regulars", None, raw)
    with migrated_db.session() as session:
        if session.connection().dialect.name == "postgresql":
            session.connection().exec_driver_sql("SET LOCAL enable_seqscan = off")
        else:
            # SQLite would otherwise start from the list, whatever its size.
            session.connection().exec_driver_sql("ANALYZE")
        checked = terms.validate(raw)
        assert indexes.index_name("city", "lower") in _plan(
            session, compile.reachable(checked, NOW)
        )
        assert _ids(session, compile.reachable(checked, NOW)) == expected(world, checked)


def test_launch_gives_each_timezone_its_own_due_time(migrated_db) -> None:
    world = build(migrated_db, n=40)
    raw = {"conditions": [{"field": "timezone", "op": "in", "value": ["Asia/Kolkata", "UTC"]}]}
    raw["match"] = "any"
    raw["conditions"].append({"field": "timezone", "op": "not_in", "value": ["Asia/Kolkata"]})
    _, campaign_id = _segment_campaign(migrated_db, raw)
    later = NOW + timedelta(hours=5)
    with migrated_db.session() as session:
        lifecycle.launch(session, None, campaign_id, now=NOW, due_by_zone={"Asia/Kolkata": later})
    with migrated_db.session() as session:
        rows = session.execute(
            select(Message.contact_id, Message.next_attempt_at).where(
                Message.campaign_id == campaign_id
            )
        ).all()
    zone = {p.id: p.timezone for p in world.people}
    assert {zone[c] for c, _ in rows} >= {"Asia/Kolkata", "Asia/Dubai"}
    for contact_id, due in rows:
        assert due == (later if zone[contact_id] == "Asia/Kolkata" else NOW)


def test_terms_read_as_one_sentence_and_the_builder_offers_each_field(migrated_db) -> None:
    world = build(migrated_db, n=10)
    raw = {
        "conditions": [
            {"field": "list", "op": "in", "value": world.list_ids[:1]},
            {"field": "attribute", "key": "due_amount", "op": "gt", "value": "500"},
            {"field": "attribute", "key": "last", "op": "within_days", "value": 90},
            {"field": "country", "op": "not_in", "value": ["IN"]},
            {"field": "outcome", "campaign_id": world.campaign_ids[1], "op": "read_not_replied"},
        ]
    }
    with migrated_db.session() as session:
        assert terms.describe(terms.validate(raw), session) == (
            "In list Segment list 0 and Due Amount > 500 and Last is within the last 90 days "
            "and country is not India and read but did not reply to “Offer 1”"
        )
        assert terms.describe(terms.validate({}), session) == "Everyone who can be messaged"
        choices = {c["field"]: c for c in terms.field_choices(session)}
        assert set(choices) == set(terms.FIELD_LABELS)
        assert {o["label"] for o in choices["list"]["options"]} >= {"Segment list 0"}
        assert {o["value"] for o in choices["outcome"]["campaigns"]} == set(world.campaign_ids)
        assert {"IN", "AE"} <= {o["value"] for o in choices["country"]["options"]}
        assert "Asia/Kolkata" in {o["value"] for o in choices["timezone"]["options"]}
        assert [op["value"] for op in choices["attribute"]["ops"]] == list(terms.ATTRIBUTE_OPS)
        keys = {k["value"]: k["label"] for k in choices["attribute"]["keys"]}
        assert keys.get("due_amount") == "Due Amount"


def test_a_copy_of_a_segment_campaign_keeps_its_segment(migrated_db) -> None:
    # A copy used to lose the segment: its page said nobody, and repeating it was refused
    # with "Choose at least one list to send to."
    world = build(migrated_db)
    raw = {
        "match": "all",
        "conditions": [{"field": "attribute", "key": "city", "op": "eq", "value": "pune"}],
    }
    want = expected(world, terms.validate(raw))
    segment_id, campaign_id = _segment_campaign(migrated_db, raw)
    with migrated_db.session() as session:
        lifecycle.launch(session, None, campaign_id, now=NOW)
    with migrated_db.session() as session:
        copy = lifecycle.duplicate(session, None, campaign_id)
        assert copy.segment_id == segment_id
        assert copy.audience_terms is None  # worked out again at its own launch
        assert recipient_count(session, copy)[0] == len(want)


def test_an_outcome_or_one_list_drives_a_join_and_the_sets_stay_exact(migrated_db) -> None:
    """A campaign outcome (else one list) is joined, not read as a whole set first; the
    other memberships beside it (another outcome of the same messages table, lists,
    opt-ins) are still checked, and the opted-out count reads the same join."""
    world = build(migrated_db)
    first, second = world.campaign_ids
    lists = world.list_ids
    combos = [
        [{"field": "outcome", "campaign_id": first, "op": "delivered_not_read"}],
        [
            {"field": "list", "op": "in", "value": [lists[0]]},
            {"field": "outcome", "campaign_id": first, "op": "received"},
            {"field": "outcome", "campaign_id": second, "op": "not_delivered"},
        ],
        [
            {"field": "outcome", "campaign_id": first, "op": "received"},
            {"field": "outcome", "campaign_id": first, "op": "read_not_replied"},
        ],
        [
            {"field": "list", "op": "in", "value": [lists[1]]},
            {"field": "list", "op": "in", "value": [lists[0], lists[2]]},
            {"field": "opt_in", "op": "eq", "value": "never_opted_out"},
        ],
        [
            {"field": "list", "op": "not_in", "value": [lists[2]]},
            {"field": "list", "op": "in", "value": [lists[0]]},
        ],
    ]
    with migrated_db.session() as session:
        for conditions in combos:
            checked = terms.validate({"match": "all", "conditions": conditions})
            want = expected(world, checked)
            query = compile.reachable(checked, NOW)
            assert " JOIN " in str(query), conditions
            assert _ids(session, query) == want, conditions
            assert _ids(session, compile.members(checked, NOW)) == expected(
                world, checked, reachable=False
            )
            assert service.count(session, checked, now=NOW) == (len(want), False)
            assert [c.id for c in service.sample(session, checked, now=NOW, n=5)] == sorted(want)[
                :5
            ]
            left_out = {
                p.id
                for p in world.people
                if p.opted_out and all(matches(p, c) for c in checked["conditions"])
            }
            assert _ids(session, compile.opted_out(checked, NOW)) == left_out, conditions
            # A WHERE for a query that has its contacts row from elsewhere: no join.
            where = compile.condition(checked, NOW)
            assert where is not None and " JOIN " not in str(where)
