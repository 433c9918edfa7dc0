"""`blindsum node`: one participant institution.

Dials out to the aggregator over mTLS (it never accepts inbound connections),
and for every round: verifies the signed round config, checks it against its
own policy and ledger (refusing visibly, not by timing out), trains locally,
DP-encodes the update, runs the secagg client, and records its own ledger entry
with the contributor count it verified itself (the U3 it signed, minus the
colluders its policy assumes), never the aggregator's claim.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

import dp
from blindsum.v1 import federation_pb2 as fpb
from blindsum.v1 import federation_pb2_grpc as fgrpc
from blindsum.v1 import secagg_pb2 as spb
from node import transport
from node.config import NodeConfig
from node.pki import load_signing_key
from secagg import crypto, wire
from secagg.client import ClientState, ParticipantPolicy, SecAggClient
from secagg.errors import ProtocolAbort

log = logging.getLogger("blindsum.node")

SUBMIT_TIMEOUT = 30.0
UPLOAD_TIMEOUT = 120.0


class RoundRefused(Exception):
    """This node will not take part in a round (the text says why; sent to the aggregator)."""


@dataclass
class RoundState:
    round: int
    client: SecAggClient
    application: fpb.RoundApplication
    params: dp.DdgParams
    encoding: asyncio.Task | None = None
    charged: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per activity


class Participant:
    def __init__(
        self,
        config: NodeConfig,
        *,
        aggregator_address: str | None = None,
        crash_after_upload: int | None = None,
        crash_before_upload: int | None = None,
    ) -> None:
        from node import training
        from node.data import load_local_data

        training.configure_torch()
        training.warm_up()
        self.config = config
        fed = config.federation
        self.member = fed.member_by_name(config.name)
        self.signing_key = load_signing_key(config.signing_key)
        if self.signing_key.public != self.member.signing_public_key:
            raise ValueError(
                f"{config.signing_key}: not the signing key the roster lists for {config.name}"
            )
        self.address = aggregator_address or fed.address
        n_features, n_classes = training.DATASET_SHAPES[fed.model.dataset]
        self.X, self.y = load_local_data(config.data, n_classes=n_classes)
        if self.X.shape[1] != n_features:
            raise ValueError(
                f"{config.data}: {self.X.shape[1]} features, the federation's model needs {n_features}"
            )
        self.model = training.model_for(fed.model)
        policy = config.policy
        self.ledger = dp.PrivacyLedger(
            config.ledger, delta=policy.delta, epsilon_cap=policy.epsilon_cap
        )
        self.secagg_policy = ParticipantPolicy(
            minimum_aggregate=policy.minimum_contributors, threat=policy.threat
        )
        # Training runs beside the protocol stages (it is only needed at masked
        # input), so it gets its own thread; protocol crypto never waits behind it.
        self.training_executor = ThreadPoolExecutor(1, thread_name_prefix="training")
        self.crypto_executor = ThreadPoolExecutor(1, thread_name_prefix="secagg")
        self.current: RoundState | None = None
        self.stub: fgrpc.AggregationStub | None = None
        self.rounds_done = 0
        # Fault injection for tests and the demo: die right after uploading the masked
        # input of this round, exactly like a process killed between MaskedInputCollection
        # and Unmasking (no cleanup, no goodbye).
        self.crash_after_upload = crash_after_upload
        # CKKS path: die after encrypting, before the upload (absent from the sum).
        self.crash_before_upload = crash_before_upload
        self.ckks = None
        if fed.path_kind == "ckks":
            from node.ckks_rounds import CkksNode

            self.ckks = CkksNode(self)

    # -- policy ---------------------------------------------------------------

    def _worst_case_record(
        self, params: dp.DdgParams, threshold: int | None = None
    ) -> dp.RoundRecord:
        """The round priced with the fewest honest contributors its sum could have.

        Before keys are exchanged that is our own minimum (we never sign a smaller
        U3). Once our masked input has left, the sum may be released without our
        signature, with as few inputs as the protocol threshold t allows, so the
        provisional charge also takes t into account.
        """
        least = self.config.policy.minimum_contributors
        if threshold is not None:
            least = min(least, threshold)
        honest = max(1, least - self.config.policy.assumed_colluders)
        return dp.RoundRecord(
            contributors=honest, sigma=params.sigma, gamma=params.gamma, clip=params.clip,
            padded_dim=params.padded_dim, beta=params.beta,
        )  # fmt: skip

    def check_round(
        self, signed: spb.SignedRoundConfig
    ) -> tuple[spb.RoundConfig, fpb.RoundApplication, dp.DdgParams]:
        """Everything this node checks before it advertises keys for a round."""
        fed = self.config.federation
        digest = wire.config_digest(signed.round_config)
        if not crypto.verify_signature(fed.aggregator.signing_public_key, digest, signed.signature):
            raise RoundRefused("round config not signed by the aggregator")
        cfg = wire.parse_round_config(signed.round_config)
        app = fpb.RoundApplication.FromString(cfg.application)
        if cfg.federation != fed.name:
            raise RoundRefused(f"round config for federation {cfg.federation!r}")
        params = self.check_application(app, cfg.round, bits=cfg.bits, padded_dim=cfg.dimension)
        return cfg, app, params

    def check_application(
        self, app: fpb.RoundApplication, round_number: int, *, bits: int,
        padded_dim: int | None = None,
    ) -> dp.DdgParams:  # fmt: skip
        """The checks both paths make on a signed round: order, parameters, policy, budget."""
        last = max((meta.get("round", 0) for _, meta in self.ledger.entries if meta), default=0)
        if app.round != round_number or app.round <= last:
            raise RoundRefused(f"round {app.round} is not after the last recorded round {last}")
        d = app.ddg
        try:
            params = dp.DdgParams(
                clip=d.clip, bits=d.bits, gamma=d.gamma, sigma=d.sigma, clients=d.clients,
                dim=d.dim, beta=d.beta, wrap_prob=d.wrap_prob,
            )  # fmt: skip
        except dp.DpParameterError as exc:
            raise RoundRefused(f"DDG parameters refused: {exc}") from None
        if (
            params.dim != self.model_dimension()
            or (padded_dim is not None and padded_dim != params.padded_dim)
            or bits != params.bits
        ):
            raise RoundRefused("round dimensions do not match this node's model")
        if not math.isclose(d.delta, self.config.policy.delta, rel_tol=1e-12):
            log.info(
                "aggregator reports epsilon at delta=%g; this node accounts at delta=%g",
                d.delta,
                self.config.policy.delta,
            )
        try:
            eps = self.ledger.check(self._worst_case_record(params))
        except dp.PrivacyBudgetExceeded as exc:
            raise RoundRefused(f"privacy budget: {exc}") from None
        log.info(
            "round %d accepted: worst-case epsilon after it %.4f (cap %g)",
            app.round,
            eps,
            self.ledger.epsilon_cap,
        )
        return params

    def model_dimension(self) -> int:
        from node import training

        return training.parameter_count(self.model)

    # -- local work -------------------------------------------------------------

    async def _encode_update(
        self, app: fpb.RoundApplication, params: dp.DdgParams, timings: dict[str, float]
    ) -> np.ndarray:
        from node import training

        t0 = time.perf_counter()
        model_bytes = await self._fetch_model(app)
        timings["network_model"] = time.perf_counter() - t0
        vector = np.frombuffer(model_bytes, dtype="<f8")
        training.assign_parameters(self.model, vector)
        if training.model_digest(self.model) != app.model_digest:
            raise RoundRefused("the model served does not match the signed model digest")
        t = app.training

        def work() -> np.ndarray:
            # wall time, and this thread's CPU time (what the work costs without
            # waiting for a core: benchmarks run many nodes on few cores)
            t0, c0 = time.perf_counter(), time.thread_time()
            delta = training.train_local(
                self.model,
                self.X,
                self.y,
                epochs=t.epochs,
                learning_rate=t.learning_rate,
                batch_size=t.batch_size,
            )
            t1, c1 = time.perf_counter(), time.thread_time()
            encoded = dp.encode(delta, params, app.rotation_seed)
            timings["training"], timings["dp_encode"] = t1 - t0, time.perf_counter() - t1
            timings["training_cpu"], timings["dp_encode_cpu"] = c1 - c0, time.thread_time() - c1
            return encoded

        return await asyncio.get_running_loop().run_in_executor(self.training_executor, work)

    async def _fetch_model(self, app: fpb.RoundApplication) -> bytes:
        call = self.stub.GetModel(fpb.ModelRequest(round=app.round), timeout=UPLOAD_TIMEOUT)
        received = await transport.receive_vector(call, expected_bytes=app.model_bytes)
        return received.data

    # -- protocol ---------------------------------------------------------------

    async def _submit(self, round_number: int, data: bytes) -> None:
        await self.stub.Submit(
            fpb.NodeMessage(round=round_number, secagg=data), timeout=SUBMIT_TIMEOUT
        )

    async def _refuse(self, round_number: int, reason: str) -> None:
        log.warning("round %d refused: %s", round_number, reason)
        msg = spb.ClientMessage(abort=spb.Abort(reason=reason[:60])).SerializeToString()
        try:
            await self._submit(round_number, msg)
        except grpc.aio.AioRpcError as exc:
            log.warning("could not tell the aggregator: %s", exc.code().name)

    async def on_round_config(self, event: fpb.AggregatorEvent, message: spb.ServerMessage) -> None:
        if self.current is not None:
            self.current.client.close()
            self.current = None
        try:
            cfg, app, params = self.check_round(message.round_config)
        except (RoundRefused, ProtocolAbort) as exc:
            await self._refuse(event.round, f"refused: {exc}")
            return
        client = SecAggClient(
            participant_id=self.member.id, signing_key=self.signing_key, roster=self.config.federation.roster,
            aggregator_key=self.config.federation.aggregator.signing_public_key, policy=self.secagg_policy,
        )  # fmt: skip
        state = RoundState(event.round, client, app, params)
        reply = client.receive(event.secagg)
        self.current = state
        state.encoding = asyncio.create_task(self._encode_update(app, params, state.timings))
        await self._submit(event.round, reply)

    async def on_secagg(self, event: fpb.AggregatorEvent, message: spb.ServerMessage) -> None:
        state = self.current
        if state is None or event.round != state.round:
            log.warning("message for round %d ignored (no such round in progress)", event.round)
            return
        kind = message.WhichOneof("body")
        if kind == "masked_input_request":
            try:
                encoded = await state.encoding
            except (RoundRefused, grpc.aio.AioRpcError, ValueError) as exc:
                # training, model transfer or encoding failed: nothing of ours leaves
                state.client.close()
                await self._refuse(state.round, f"refused: {exc}")
                return
            state.client.set_input(encoded)
            # Once the masked input leaves, a sum containing our noise may be released
            # without us: charge the worst case now (fail closed); the consistency stage
            # revises it to the contributor count we verify ourselves.
            graph = state.client.graph
            record = self._worst_case_record(state.params, graph.params.t if graph else None)
            try:
                self.ledger.charge(record, meta=self._meta(state, provisional=True))
            except dp.PrivacyBudgetExceeded as exc:
                state.client.close()
                await self._refuse(state.round, f"refused: privacy budget: {exc}")
                return
            state.charged = True
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()

        def receive() -> tuple[bytes | None, float]:
            c0 = time.thread_time()
            return state.client.receive(event.secagg), time.thread_time() - c0

        try:
            reply, cpu = await loop.run_in_executor(self.crypto_executor, receive)
        except ProtocolAbort as exc:
            log.warning("round %d: refused by the protocol checks: %s", state.round, exc)
            await self._submit_quietly(state.round, state.client.abort_message())
            return
        stage_key = f"secagg_{kind.removesuffix('_request')}"
        _add(state.timings, stage_key, time.perf_counter() - t0)
        _add(state.timings, stage_key + "_cpu", cpu)
        if reply is None:  # the aggregator aborted the round
            log.warning("round %d aborted by the aggregator", state.round)
            return
        t0 = time.perf_counter()
        if kind == "masked_input_request":
            masked = spb.ClientMessage.FromString(reply).masked_input
            header = fpb.VectorHeader(round=state.round, session_id=masked.session_id)
            chunks = transport.chunk_vector(masked.vector, header)
            await self.stub.UploadMaskedInput(chunks, timeout=UPLOAD_TIMEOUT)
            _add(state.timings, "network_upload", time.perf_counter() - t0)
            if self.crash_after_upload == state.round:
                log.warning(
                    "fault injection: exiting right after the masked input of round %d", state.round
                )
                os._exit(137)
            return
        if kind == "consistency_request":
            self._record_verified(state)
        await self._submit(state.round, reply)
        _add(state.timings, "network_submit", time.perf_counter() - t0)
        if state.client.state is ClientState.DONE:
            self.rounds_done += 1
            eps, _ = self.ledger.epsilon()
            log.info("round %d: unmasking answered; epsilon spent so far %.4f", state.round, eps)
            self._write_timings(state)

    def _write_timings(self, state: RoundState) -> None:
        self._write_timings_for(state.round, state.timings)

    def _write_timings_for(self, round_number: int, timings: dict[str, float]) -> None:
        """Per-round activity seconds next to the ledger (benchmarks read them)."""
        path = self.config.ledger.with_name("timings.jsonl")
        with path.open("a") as fh:
            fh.write(json.dumps({"round": round_number, "node": self.member.id, **timings}) + "\n")

    def _meta(self, state: RoundState, *, provisional: bool, verified: int | None = None) -> dict:
        client = state.client
        return {
            "round": state.round,
            "node_id": self.member.id,
            "session_id": client.session_id.hex(),
            "config_digest": client.config_digest.hex(),
            "provisional": provisional,
            "verified_survivors": verified,
            "assumed_colluders": self.config.policy.assumed_colluders,
        }

    def _record_verified(self, state: RoundState) -> None:
        """Replace the provisional charge with the count we just verified and signed."""
        survivors = len(state.client.u3)
        honest = max(1, survivors - self.config.policy.assumed_colluders)
        p = state.params
        record = dp.RoundRecord(
            contributors=honest,
            sigma=p.sigma,
            gamma=p.gamma,
            clip=p.clip,
            padded_dim=p.padded_dim,
            beta=p.beta,
        )
        self.ledger.revise_last(
            record, meta=self._meta(state, provisional=False, verified=survivors)
        )

    async def _submit_quietly(self, round_number: int, data: bytes) -> None:
        try:
            await self._submit(round_number, data)
        except grpc.aio.AioRpcError as exc:
            log.warning("round %d: submit failed: %s", round_number, exc.code().name)

    async def run(self, stopping: asyncio.Event) -> int:
        fed = self.config.federation
        creds = transport.channel_credentials(
            self.config.key, self.config.certificate, fed.ca_certificate
        )
        run_budget = fed.deadlines["join"] + fed.rounds * (
            sum(fed.deadlines[s] for s in wire_stages()) + 120
        )
        async with grpc.aio.secure_channel(
            self.address, creds, options=transport.channel_options(fed.aggregator.name)
        ) as channel:
            self.stub = fgrpc.AggregationStub(channel)
            events = await self._join(channel, run_budget, stopping)
            if events is None:
                return 1
            try:
                async for event in events:
                    body = event.WhichOneof("body")
                    if body == "shutdown":
                        log.info("aggregator: %s", event.shutdown.reason)
                        break
                    if body == "result":
                        res = event.result
                        log.info("round %d result: released=%s contributors=%d accuracy=%.3f",
                                 res.round, res.released, len(res.contributors), res.accuracy)  # fmt: skip
                        if self.ckks is not None:
                            self.ckks.on_result(res)
                        continue
                    if body == "ckks":
                        if self.ckks is None:
                            log.warning("ckks message ignored: this federation uses masking")
                        else:
                            await self.ckks.on_event(event)
                        continue
                    try:
                        message = wire.parse_server_message(event.secagg)
                    except ProtocolAbort as exc:
                        log.warning("undecodable message from the aggregator: %s", exc)
                        continue
                    if message.WhichOneof("body") == "round_config":
                        await self.on_round_config(event, message)
                    else:
                        await self.on_secagg(event, message)
                    if stopping.is_set():
                        break
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.CANCELLED and stopping.is_set():
                    return 0
                log.error("event stream ended: %s %s", exc.code().name, exc.details())
                return 1
            finally:
                if self.current is not None:
                    self.current.client.close()
                if self.ckks is not None:
                    self.ckks.close()
        eps, _ = self.ledger.epsilon() if self.ledger.records else (0.0, 0)
        log.info(
            "done: %d rounds contributed, epsilon %.4f at delta %g",
            self.rounds_done,
            eps,
            self.ledger.delta,
        )
        return 0

    async def _join(self, channel, run_budget: float, stopping: asyncio.Event):
        """Open the event stream, retrying while the aggregator is not up yet (bounded)."""
        fed = self.config.federation
        deadline = asyncio.get_running_loop().time() + fed.deadlines["join"]
        delay = 0.2
        while not stopping.is_set():
            try:
                await asyncio.wait_for(channel.channel_ready(), timeout=5)
                return self.stub.Join(fpb.JoinRequest(federation=fed.name), timeout=run_budget)
            except (TimeoutError, grpc.aio.AioRpcError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    log.error(
                        "cannot reach the aggregator at %s (TLS handshake or network): %s",
                        self.address,
                        exc,
                    )
                    return None
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
        return None


def _add(timings: dict[str, float], key: str, seconds: float) -> None:
    timings[key] = timings.get(key, 0.0) + seconds


def wire_stages() -> tuple[str, ...]:
    return ("advertise_keys", "share_keys", "masked_input", "consistency", "unmasking")


async def run_node(
    config: NodeConfig,
    aggregator_address: str | None = None,
    crash_after_upload: int | None = None,
    crash_before_upload: int | None = None,
) -> int:
    participant = Participant(
        config, aggregator_address=aggregator_address, crash_after_upload=crash_after_upload,
        crash_before_upload=crash_before_upload,
    )  # fmt: skip
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        return await participant.run(stopping)
    finally:
        participant.training_executor.shutdown(wait=False, cancel_futures=True)
        participant.crypto_executor.shutdown(wait=False, cancel_futures=True)


def main_node(
    config_path: Path,
    aggregator_address: str | None = None,
    crash_after_upload: int | None = None,
    crash_before_upload: int | None = None,
) -> int:
    from node.config import load_node_config

    config = load_node_config(config_path)
    return asyncio.run(
        run_node(config, aggregator_address, crash_after_upload, crash_before_upload)
    )


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("node", help="run one participant of a federation")
    p.add_argument("--config", type=Path, required=True, help="the node's TOML config")
    p.add_argument("--aggregator", default=None, help="override the aggregator address (host:port)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    # Fault injection (tests, `blindsum demo --kill-node-at-round`): not for production.
    p.add_argument(
        "--crash-after-upload", type=int, default=None, metavar="ROUND", help=argparse.SUPPRESS
    )
    p.add_argument(
        "--crash-before-upload", type=int, default=None, metavar="ROUND", help=argparse.SUPPRESS
    )
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    import sys

    from node.config import ConfigError
    from node.logs import setup_logging

    setup_logging(args.log_level)
    try:
        return main_node(
            args.config, args.aggregator, args.crash_after_upload, args.crash_before_upload
        )
    except (ConfigError, OSError, ValueError) as exc:
        print(f"blindsum node: error: {exc}", file=sys.stderr)
        return 2
