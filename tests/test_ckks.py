"""The CKKS path (node/ckks.py): exact sums identical to the masking path, parameter
refusals, committee key custody, committee agreement, and the aggregator's accumulator."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import tenseal as ts

from dp import CsprngSource, DdgParams, decode, encode, gamma_from_bits
from node import ckks
from secagg import crypto
from secagg.simulate import random_inputs, run_simulation

FED = "test-federation"
BITS = 16


def _encoded_inputs(n: int, d: int, seed: bytes) -> tuple[dict[int, np.ndarray], DdgParams]:
    """n participants' DDG encodings of random updates (same params, seed, noise source)."""
    clip, z = 1.0, 1.0
    sigma = z * clip / math.sqrt(n)
    params = DdgParams(
        clip=clip,
        bits=BITS,
        gamma=gamma_from_bits(BITS, n, d, clip, sigma),
        sigma=sigma,
        clients=n,
        dim=d,
    )
    data_rng = np.random.default_rng(7)  # the updates only: not privacy-relevant
    inputs = {}
    for u in range(1, n + 1):
        update = data_rng.normal(size=d)
        inputs[u] = encode(update, params, seed, CsprngSource(key=bytes([u]) * 32))
    return inputs, params


@pytest.mark.parametrize("d", [10_000, 1_537])
def test_released_sums_bit_identical_to_masking_path(d: int) -> None:
    seed = bytes(range(32))
    inputs, params = _encoded_inputs(5, d, seed)
    masking = run_simulation(inputs, bits=BITS)
    he = ckks.simulate_ckks_round(inputs, BITS, committee_size=2)
    assert he.error is None and masking.released is not None
    assert he.contributors == (1, 2, 3, 4, 5)
    assert he.released.dtype == masking.released.dtype
    assert np.array_equal(he.released, masking.released)
    # ... and therefore the same decoded mean, bit for bit.
    a = decode(he.released, params, seed, len(he.contributors))
    b = decode(masking.released, params, seed, 5)
    assert a.tobytes() == b.tobytes()


def test_dropout_is_absent_from_the_sum() -> None:
    inputs = random_inputs(5, 5_000, BITS)
    result = ckks.simulate_ckks_round(inputs, BITS, committee_size=3, dropouts=[4])
    assert result.error is None and result.contributors == (1, 2, 3, 5)
    expected = sum(inputs[u].astype(np.uint64) for u in (1, 2, 3, 5)) & np.uint64(0xFFFF)
    assert np.array_equal(result.released, expected.astype(np.uint32))


# --- parameters ----------------------------------------------------------------------


def test_parameters_derived_not_hard_coded() -> None:
    p = ckks.choose_parameters(100, 16)
    assert p.poly_modulus_degree == 8192 and p.coeff_mod_bit_sizes == (60, 60)
    assert p.scale_bits >= ckks.MIN_SCALE_BITS
    assert p.headroom_bits >= ckks.HEADROOM_MARGIN_BITS
    assert p.error_bound <= ckks.ERROR_TARGET
    assert sum(p.coeff_mod_bit_sizes) <= ckks.SECURITY_LIMITS[p.poly_modulus_degree]
    # More clients need a larger scale (the error grows like sqrt(n)).
    assert ckks.choose_parameters(32_768, 16).scale_bits > p.scale_bits


@pytest.mark.parametrize(("limit", "bits"), [(32_768, 16), (5_895, 20)])
def test_parameter_refusal_at_the_headroom_limit(limit: int, bits: int) -> None:
    ok = ckks.choose_parameters(limit, bits)
    assert ok.headroom_bits >= ckks.HEADROOM_MARGIN_BITS
    with pytest.raises(ckks.CkksParameterError) as info:
        ckks.choose_parameters(limit + 1, bits)
    text = str(info.value)
    assert "headroom" in text and "log2(q_data) - scale_bits - 1" in text
    assert "reduce bits" in text and f"<= {limit}" in text  # names the limit and the fix


def test_parameter_refusals_name_the_limit() -> None:
    with pytest.raises(ckks.CkksParameterError, match="security limit of 109"):
        ckks.choose_parameters(10, 16, poly_modulus_degree=4096)
    with pytest.raises(ckks.CkksParameterError, match="headroom"):
        ckks.choose_parameters(5, 32)
    with pytest.raises(ckks.CkksParameterError):
        ckks.choose_parameters(0, 16)
    assert issubclass(ckks.CkksParameterError, ValueError)


def _context(params: ckks.CkksParameters) -> ts.Context:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                     coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes))  # fmt: skip
    ctx.global_scale = params.scale
    return ctx


def test_error_model_and_exactness_at_the_headroom_boundary() -> None:
    params = ckks.choose_parameters(5, 16)
    ctx = _context(params)
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**15), 2**15, 4096).astype(np.float64)
    errors = (
        np.concatenate([np.array(ts.ckks_vector(ctx, x).decrypt()) - x for _ in range(8)])
        * params.scale
    )
    # The modelled fresh-error std-dev (the parameter rule's input) is not optimistic.
    assert errors.std() <= 1.1 * ckks.fresh_error_std(params.poly_modulus_degree)
    # At the headroom limit (32,768 clients at b = 16) the largest possible sum,
    # +-n 2^(b-1), still decrypts exactly ...
    n = 32_768
    top = ckks.choose_parameters(n, 16)
    ctx = _context(top)
    assert top.headroom_bits >= ckks.HEADROOM_MARGIN_BITS
    sums = rng.integers(-n * 2**15, n * 2**15 + 1, 4096)
    sums[:2] = [n * 2**15, -n * 2**15]
    chunk = ts.ckks_vector(ctx, sums.astype(np.float64)).serialize()
    out = ckks.decrypt_sum([chunk], ctx, 16, contributors=n)
    assert np.array_equal(out, (sums.view(np.uint64) & np.uint64(0xFFFF)).astype(np.uint32))
    # ... while a sum past q_data / 2 wraps to a wrong value, which decryption refuses
    # (out of range for n contributors) instead of releasing.
    q_data = int(ctx.seal_context().data.first_context_data().total_coeff_modulus())
    limit = q_data / 2 / top.scale  # the largest |value| that does not wrap
    part = ts.ckks_vector(ctx, np.full(4096, limit / 4 + 12345.0))
    total = part.copy()
    for _ in range(4):
        total.add_(part)
    wrapped = np.array(total.decrypt())
    assert np.all(np.abs(wrapped - 5 * (limit / 4 + 12345.0)) > 1)
    with pytest.raises(ckks.CkksDecryptionRefused, match="contributors"):
        ckks.decrypt_sum([total.serialize()], ctx, 16, contributors=n)


def test_decrypt_fails_closed_on_non_integer_and_out_of_range() -> None:
    params = ckks.choose_parameters(5, 16)
    ctx = _context(params)
    half = ts.ckks_vector(ctx, np.full(100, 3.5)).serialize()
    with pytest.raises(ckks.CkksDecryptionRefused, match="nearest integer"):
        ckks.decrypt_sum([half], ctx, 16)
    big = ts.ckks_vector(ctx, np.full(100, 3 * 2.0**15)).serialize()
    with pytest.raises(ckks.CkksDecryptionRefused, match="contributors"):
        ckks.decrypt_sum([big], ctx, 16, contributors=2)


# --- key custody ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def committee():
    run_id = b"run-1"
    keys = {i: crypto.SigningKey.generate() for i in (1, 2, 3, 9)}
    lead = ckks.CommitteeKeys.generate(
        5, BITS, federation=FED, run_id=run_id, lead=1, signing_key=keys[1]
    )
    return run_id, keys, lead


def test_public_context_signed_by_lead_is_accepted_and_public(committee) -> None:
    run_id, keys, lead = committee
    ann = lead.announcement()
    ctx = ckks.verify_public_context(ann, keys[1].public, federation=FED, run_id=run_id,
                                     n_clients=5, bits=BITS)  # fmt: skip
    assert not ctx.is_private() and not ctx.has_secret_key()
    assert not ts.context_from(lead.public_context_bytes).is_private()


def test_public_context_not_signed_by_the_lead_is_refused(committee) -> None:
    run_id, keys, lead = committee
    ann = lead.announcement()
    # Signed by another site (say the aggregator or another member): refused.
    forged = replace(ann, signature=keys[9].sign(ann.signed_bytes()))
    with pytest.raises(ckks.ContextAuthenticationError, match="signature"):
        ckks.verify_public_context(forged, keys[1].public)
    # The lead's signature over another context: refused.
    other = ckks.CommitteeKeys.generate(5, BITS, federation=FED, run_id=run_id, lead=9,
                                        signing_key=keys[9])  # fmt: skip
    swapped = replace(ann, public_context=other.public_context_bytes)
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.verify_public_context(swapped, keys[1].public)
    # Another run or federation: refused.
    with pytest.raises(ckks.ContextAuthenticationError, match="run"):
        ckks.verify_public_context(ann, keys[1].public, run_id=b"run-2")
    # Parameters too small for this round's participants: refused.
    with pytest.raises(ckks.CkksParameterError, match="cover 5 clients"):
        ckks.verify_public_context(ann, keys[1].public, n_clients=6, bits=BITS)


def test_announcement_carrying_a_secret_key_is_refused(committee) -> None:
    run_id, keys, lead = committee
    secret = lead.secret_context().serialize(save_secret_key=True)
    bad = replace(lead.announcement(), public_context=secret, signature=b"")
    bad = replace(bad, signature=keys[1].sign(bad.signed_bytes()))
    with pytest.raises(ckks.ContextAuthenticationError, match="no secret key"):
        ckks.verify_public_context(bad, keys[1].public)


def test_sealed_secret_context_opens_only_for_its_member(committee) -> None:
    run_id, keys, lead = committee
    ann = lead.announcement()
    key_a, enrol_a = ckks.enrol_member(keys[2], member=2, federation=FED, run_id=run_id)
    key_b, _enrol_b = ckks.enrol_member(keys[3], member=3, federation=FED, run_id=run_id)
    sealed = lead.seal_secret_context(enrol_a, keys[2].public)
    common = dict(lead_public_key=keys[1].public, announcement=ann, federation=FED, run_id=run_id)
    ctx = ckks.open_secret_context(sealed, key_a, member=2, **common)
    assert ctx.is_private()
    # It decrypts what the public context encrypts.
    pub = ckks.verify_public_context(ann, keys[1].public)
    chunk = ts.ckks_vector(pub, [1.0, -2.0, 3.0]).serialize()
    assert ckks.decrypt_sum([chunk], ctx, BITS).tolist() == [1, 2**16 - 2, 3]
    # Member B cannot open A's context (routing, and then the X25519 key).
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.open_secret_context(sealed, key_b, member=3, **common)
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.open_secret_context(
            replace(sealed, member=3, member_agreement_public=key_b.public), key_b, member=3,
            **common,
        )  # fmt: skip
    # Tampered ciphertext (re-signed by an attacker, or not): refused.
    blob = bytearray(sealed.ciphertext)
    blob[40] ^= 1
    tampered = replace(sealed, ciphertext=bytes(blob))
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.open_secret_context(tampered, key_a, member=2, **common)
    resigned = replace(tampered, signature=keys[9].sign(tampered.signed_bytes()))
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.open_secret_context(resigned, key_a, member=2, **common)
    # Sealed by someone other than the lead: refused.
    with pytest.raises(ckks.ContextAuthenticationError):
        ckks.open_secret_context(
            sealed, key_a, member=2, **{**common, "lead_public_key": keys[9].public}
        )
    # An enrolment not signed by the member is refused by the lead.
    with pytest.raises(ckks.ContextAuthenticationError):
        lead.seal_secret_context(enrol_a, keys[3].public)


def test_accumulator_never_holds_a_secret_key(committee) -> None:
    run_id, keys, lead = committee
    ann = lead.announcement()
    with pytest.raises(ckks.CkksError, match="public context only"):
        ckks.CiphertextAccumulator(lead.secret_context(), ann.parameters, 100)
    pub = ckks.verify_public_context(ann, keys[1].public)
    acc = ckks.CiphertextAccumulator(
        pub, ann.parameters, 5000, federation=FED, run_id=run_id, round=1
    )
    assert not pub.is_private()
    inputs = random_inputs(3, 5000, BITS)
    for u in (1, 2):
        chunks = ckks.encrypt_update(inputs[u], BITS, pub)
        receipt = ckks.sign_upload_receipt(chunks, keys[1], federation=FED, run_id=run_id,
                                           round=1, participant=u)  # fmt: skip
        acc.add_upload(u, chunks, receipt)
    # Participant 3 breaks off after one chunk: subtracted again, absent from the sum.
    chunks3 = ckks.encrypt_update(inputs[3], BITS, pub)
    acc.begin(3)
    acc.add_chunk(3, chunks3[0])
    acc.abandon(3)
    # A chunk for another key, and a chunk of the wrong size, are refused.
    acc.begin(3)
    with pytest.raises(ckks.CkksError):
        acc.add_chunk(3, chunks3[1])  # chunk 1 sent as chunk 0 (wrong size)
    acc.abandon(3)
    total = acc.result()
    with pytest.raises(ValueError, match="secret_key"):
        ts.ckks_vector_from(pub, total[0]).decrypt()
    expected = (inputs[1].astype(np.uint64) + inputs[2]) & np.uint64(0xFFFF)
    assert np.array_equal(ckks.decrypt_sum(total, lead.secret_context(), BITS), expected)
    assert acc.contributors == (1, 2)


# --- committee agreement --------------------------------------------------------------


def test_member_reporting_a_different_sum_blocks_release() -> None:
    inputs = random_inputs(4, 3000, BITS)
    result = ckks.simulate_ckks_round(
        inputs, BITS, committee_size=3,
        member_tamper=lambda m, v: (v ^ np.uint32(1)) if m == 2 else v,
    )  # fmt: skip
    assert result.released is None
    assert isinstance(result.error, ckks.CommitteeDisagreement)


def test_agree_on_sum_requires_every_member() -> None:
    keys = {m: crypto.SigningKey.generate() for m in (1, 2)}
    pubs = {m: k.public for m, k in keys.items()}
    digest = ckks.sum_digest(np.arange(5, dtype=np.uint32), BITS)

    def attest(m: int, d: bytes = digest, contributors=(3, 4, 5)) -> ckks.SumAttestation:
        a = ckks.SumAttestation(FED, b"r", 1, m, contributors, b"c" * 32, d)
        return replace(a, signature=keys[m].sign(a.signed_bytes()))

    assert ckks.agree_on_sum([attest(1), attest(2)], pubs, round=1) == digest
    with pytest.raises(ckks.CommitteeDisagreement, match="no attestation"):
        ckks.agree_on_sum([attest(1)], pubs)
    with pytest.raises(ckks.CommitteeDisagreement, match="different"):
        ckks.agree_on_sum([attest(1), attest(2, b"x" * 32)], pubs)
    with pytest.raises(ckks.CommitteeDisagreement, match="different"):
        ckks.agree_on_sum([attest(1), attest(2, contributors=(3, 4))], pubs)
    forged = replace(attest(2), signature=keys[1].sign(attest(2).signed_bytes()))
    with pytest.raises(ckks.CommitteeDisagreement, match="verify"):
        ckks.agree_on_sum([attest(1), forged], pubs)
    with pytest.raises(ckks.CommitteeDisagreement, match="another"):
        ckks.agree_on_sum([attest(1), attest(2)], pubs, round=2)


def test_member_refuses_forged_receipts_and_retires_after_a_refusal() -> None:
    run_id = b"run-r"
    keys = {i: crypto.SigningKey.generate() for i in (1, 2, 3)}
    roster = {u: k.public for u, k in keys.items()}
    lead = ckks.CommitteeKeys.generate(3, BITS, federation=FED, run_id=run_id, lead=1,
                                       signing_key=keys[1])  # fmt: skip
    member = ckks.CommitteeMember(1, lead.secret_context(), lead.params, keys[1],
                                  federation=FED, run_id=run_id, roster=roster)  # fmt: skip
    pub = ckks.verify_public_context(lead.announcement(), keys[1].public)
    chunks = ckks.encrypt_update(np.arange(10, dtype=np.uint32), BITS, pub)
    good = ckks.sign_upload_receipt(chunks, keys[2], federation=FED, run_id=run_id, round=1,
                                    participant=2)  # fmt: skip
    forged = replace(good, participant=3)  # 2's signature claiming to be 3
    with pytest.raises(ckks.ContextAuthenticationError):
        member.decrypt_and_attest(chunks, [good, forged], round=1)
    assert member.retired
    with pytest.raises(ckks.CkksDecryptionRefused, match="retired"):
        member.decrypt_and_attest(chunks, [good], round=1)


def test_encrypt_update_in_worker_processes_matches_serial(committee) -> None:
    run_id, keys, lead = committee
    x = random_inputs(1, 20_000, BITS)[1]
    pub = ckks.verify_public_context(lead.announcement(), keys[1].public)
    chunks = ckks.encrypt_update(x, BITS, lead.public_context_bytes, workers=2)
    assert len(chunks) == lead.params.chunks(20_000) == 5
    assert np.array_equal(ckks.decrypt_sum(chunks, lead.secret_context(), BITS), x)
    # one worker process given as an executor is used too (the caller's GIL stays free)
    pool = ckks.encryption_pool(1)
    try:
        one = ckks.encrypt_update(x, BITS, lead.public_context_bytes, 1, executor=pool)
        used = pool._processes  # spawned on the first submit
    finally:
        pool.shutdown()
    assert used and len(one) == 5
    assert np.array_equal(ckks.decrypt_sum(one, lead.secret_context(), BITS), x)
    with pytest.raises(ckks.CkksError, match="public context only"):
        ckks.encrypt_update(x, BITS, lead.secret_context())
    del pub


def test_bench_command_small(capsys) -> None:
    from bench import ckks_bench

    parser = argparse.ArgumentParser()
    ckks_bench.add_parser(parser.add_subparsers(dest="benchmark"))
    args = parser.parse_args(
        ["ckks", "--clients", "5", "--dim", "3000", "--workers", "1", "--json"]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["identical_sums"] is True
    assert (
        report["ckks"]["bytes_up_per_participant"] > report["masking"]["bytes_up_per_participant"]
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["ckks", "--clients", "1"])


@pytest.mark.slow
def test_released_sums_identical_large() -> None:
    seed = bytes(32)
    inputs, _params = _encoded_inputs(10, 100_000, seed)
    masking = run_simulation(inputs, bits=BITS)
    he = ckks.simulate_ckks_round(inputs, BITS, committee_size=3, workers=2)
    assert he.error is None
    assert np.array_equal(he.released, masking.released)
