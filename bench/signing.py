"""Signing cost per algorithm: Ed25519 and SM2/SM3 over a real agent policy bundle.

Builds the agent bundle of the shipped policies (what ``policy publish``
signs and an agent verifies), then times, for each algorithm, ``--rounds``
signatures and verifications of it (``agent.signing``: the same calls the
collector and the agent make), and SM3 against SHA-256 over the same bytes.
Ed25519 (OpenSSL, C) is the floor: SM2 is printed as a ratio against it, as
measured in the same run. An agent verifies once per policy version, the
collector once per version it reads into memory, and signs twice per
publish (the full and the agent body), so milliseconds here are the whole
cost. It prints figures and never fails on one; quote ``uptime`` beside them.

    .venv/bin/python bench/signing.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.policy.bundle import build_bundle_bytes
from agent.policy.loader import load_policy_dir
from agent.policy.models import agent_documents
from agent.signing import generate_signer, sm3_digest

POLICIES = Path(__file__).resolve().parents[1] / "policies"


def per_call_ms(call: object, rounds: int) -> float:
    assert callable(call)
    started = time.perf_counter()
    for _ in range(rounds):
        call()
    return (time.perf_counter() - started) * 1000 / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    documents = agent_documents(load_policy_dir(POLICIES).documents)
    body = build_bundle_bytes(documents, version=1, group=None, created_at=datetime.now(UTC),
                              author="bench", with_cases=False)
    print(f"agent bundle: {len(body):,} bytes; {args.rounds} rounds; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    figures: dict[str, tuple[float, float]] = {}
    for algorithm in ("ed25519", "sm2"):
        signer = generate_signer(algorithm)
        signature = signer.sign(body)
        key = signer.public_key
        key.verify(body, signature)  # warm: imports and first-use set-up stay out of the timing
        sign_ms = per_call_ms(lambda s=signer: s.sign(body), args.rounds)
        verify_ms = per_call_ms(lambda k=key, sig=signature: k.verify(body, sig), args.rounds)
        figures[algorithm] = (sign_ms, verify_ms)
    floor_sign, floor_verify = figures["ed25519"]
    for algorithm, (sign_ms, verify_ms) in figures.items():
        print(f"{algorithm:8s} sign {sign_ms:7.3f} ms ({sign_ms / floor_sign:6.1f}x Ed25519)  "
              f"verify {verify_ms:7.3f} ms ({verify_ms / floor_verify:6.1f}x Ed25519)")
    sha_ms = per_call_ms(lambda: hashlib.sha256(body).digest(), args.rounds)
    sm3_ms = per_call_ms(lambda: sm3_digest(body), args.rounds)
    print(f"digest   SHA-256 {sha_ms:.3f} ms, SM3 {sm3_ms:.3f} ms ({sm3_ms / sha_ms:.1f}x SHA-256)")


if __name__ == "__main__":
    main()
