"""Acceptance 1: a budget holds across two gateway processes sharing Redis and PostgreSQL;
every refusal happens before an upstream call; the released difference admits later calls."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from gateway.accounting.keys import KeyAdmin
from gateway.accounting.store import Database
from tests.accounting.conftest import REDIS_URL
from tests.accounting.gateways import chat, replicas, write_config
from tests.accounting.load import burst, wait_for_auth
from tests.fakes.bedrock_wire import BedrockWireServer, FakeRequest, Handler, Reply

# Output priced at $10 per 1M tokens, input at 0: a call with max_tokens=100 costs at most
# $0.001, so $0.05 covers exactly 50 of them at worst.
BUDGET = Decimal("0.05")
PER_CALL_WORST = Decimal("0.001")


def answer_with(fraction: float) -> Handler:
    """Answer with ``fraction`` of the request's max_tokens as output tokens."""

    def handler(request: FakeRequest) -> Reply:
        cap = request.body.get("inferenceConfig", {}).get("maxTokens", 4096)
        return Reply(text="ok", input_tokens=7, output_tokens=int(cap * fraction), latency_s=0.02)

    return handler


def spend(db: Database, key_id: str) -> tuple[int, Decimal]:
    count, total = db.query(
        "SELECT COUNT(*), COALESCE(SUM(cost_pusd), 0) FROM ledger WHERE key_id = ? "
        "AND status = 200",
        (key_id,),
    )[0]
    return int(count), Decimal(int(total)) / Decimal(10**12)


def test_budget_across_two_replicas(tmp_path: Path, pg_url: str, redis_prefix: str) -> None:
    db = Database(pg_url, tmp_path / "test-db")
    db.migrate()
    keys = KeyAdmin(db)
    exact, exact_info = keys.create("acme", budget_usd=BUDGET)
    env = {
        "STRATA_DATABASE_URL": pg_url,
        "STRATA_REDIS_URL": REDIS_URL,
        "STRATA_REDIS_PREFIX": redis_prefix,
    }
    with BedrockWireServer(answer_with(1.0)) as wire:
        config = write_config(tmp_path / "strata.yaml", wire.endpoint_url)
        with replicas(tmp_path, config, env) as gateways:
            urls = [g.url for g in gateways]

            # Worst case equals actual: 200 concurrent calls over both replicas.
            answers = burst(urls, exact, 200, chat(max_tokens=100))
            served = [a for a in answers if a.status == 200]
            refused = [a for a in answers if a.status != 200]
            assert len(served) == 50
            assert len(wire.calls) == len(served), "a refused call reached the upstream"
            assert {a.status for a in refused} == {429}
            assert {a.code for a in refused} == {"budget_exceeded"}
            assert all(int(a.headers["retry-after"]) >= 1 for a in refused)
            assert "budget exceeded" in refused[0].body["error"]["message"]

            # Worst case above actual: each call uses a quarter of what it reserves.
            wire.reset(answer_with(0.25))
            loose, loose_info = keys.create("acme", budget_usd=BUDGET)
            assert wait_for_auth(urls[0], loose, 200, 10) is not None
            assert wait_for_auth(urls[1], loose, 200, 10) is not None
            first = burst(urls, loose, 200, chat(max_tokens=100))
            first_served = sum(a.status == 200 for a in first)
            assert first_served >= 50
            # Later calls, a few at a time, until the budget is really spent.
            later_served = 0
            for _ in range(40):
                wave = burst(urls, loose, 8, chat(max_tokens=100))
                later_served += sum(a.status == 200 for a in wave)
                if all(a.status == 429 for a in wave):
                    break
            assert later_served > 0, "the released difference admitted nothing"
            assert first_served + later_served > 50
            assert len(wire.calls) == first_served + later_served
    # Replicas stopped gracefully: their ledgers are drained.
    count, total = spend(db, exact_info.id)
    assert count == 50 and total == 50 * PER_CALL_WORST <= BUDGET
    count, total = spend(db, loose_info.id)
    assert count == first_served + later_served
    assert total <= BUDGET
    assert total == count * PER_CALL_WORST / 4
    print(f"\nloose budget: {count} calls served, spend {total} of {BUDGET} USD")
    db.close()
