from forensics.benchmark_suite import measure_latency
from forensics.peers import Peer
from router.config import build_router, load_config
from tests.conftest import FakeEncoder

QUERIES = ["I want you to act as a pirate", "what is the capital of peru", "write a python function to sort a list"]


def router():
    return build_router(load_config([]), encoder=FakeEncoder())


def test_latency_without_a_peer_has_no_peer_figures():
    report = measure_latency(router(), QUERIES, warmup=1)
    assert report["n"] == 3 and {"l1_p50_us", "l2_p50_us", "decision_p50_us"} <= set(report)
    assert not any(key.startswith("peer") or "vs_peer" in key for key in report)


def test_a_peer_is_timed_on_every_query_beside_ours():
    seen = []
    peer = Peer("echo", "0.1", lambda query: seen.append(query) or "code")
    report = measure_latency(router(), QUERIES, warmup=1, peer=peer)
    assert seen[1:] == QUERIES  # one warm-up call, then each query once
    assert report["peer"] == "echo 0.1"
    assert {"peer_decision_p50_us", "peer_decision_p99_us", "decision_speedup_vs_peer", "l2_speedup_vs_peer"} <= set(report)
