"""`blindsum server`: the aggregator.

Runs R rounds. Each round it signs a RoundConfig (round, model digest, DDG and
SecAgg parameters, rotation seed), drives one `secagg.SecAggServer` through the
five stages over gRPC (stage deadlines turn silent nodes into dropouts), decodes
the noised sum with `dp.decode`, applies FedAvg with the server learning rate,
evaluates, and appends a signed, hash-chained transcript record. Peers are
identified by their mTLS certificate only.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import logging
import math
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import dp
from blindsum.v1 import federation_pb2 as fpb
from blindsum.v1 import federation_pb2_grpc as fgrpc
from blindsum.v1 import secagg_pb2 as spb
from dp.planning import plan_ddg
from node import transport
from node.config import AggregatorConfig, Federation
from node.pki import load_signing_key
from node.transcript import TranscriptWriter
from secagg import wire
from secagg.errors import AbortReason, ProtocolAbort
from secagg.server import SecAggServer, ServerStage, mask_worker_pool

log = logging.getLogger("blindsum.aggregator")

STAGE_NAMES = ("advertise_keys", "share_keys", "masked_input", "consistency", "unmasking")


def plan_round_parameters(federation: Federation, dim: int) -> dp.DdgParams:
    """The DDG parameters every round uses, from the federation's DP settings."""
    settings = federation.dp
    n = len(federation.participants)
    if settings.sigma is not None:
        from dp.planning import ddg_params_for

        z = settings.sigma * math.sqrt(n) / settings.clip
        return ddg_params_for(z, clients=n, bits=settings.bits, clip=settings.clip, dim=dim)
    plan = plan_ddg(
        epsilon=settings.epsilon, delta=settings.delta, rounds=federation.rounds, clients=n,
        accounted_contributors=settings.minimum_contributors, bits=settings.bits,
        clip=settings.clip, dim=dim,
    )  # fmt: skip
    return plan.params


class Aggregator(fgrpc.AggregationServicer):
    def __init__(self, config: AggregatorConfig) -> None:
        from node import training
        from node.data import load_local_data

        training.configure_torch()
        self.config = config
        self.federation = federation = config.federation
        self.signing_key = load_signing_key(config.signing_key)
        if self.signing_key.public != federation.aggregator.signing_public_key:
            raise ValueError(
                f"{config.signing_key}: this key is not the aggregator's signing key in the roster"
            )
        self.model = training.model_for(federation.model)
        self.dim = training.parameter_count(self.model)
        self.params = plan_round_parameters(federation, self.dim)
        self.evaluation = (
            load_local_data(config.evaluation_data) if config.evaluation_data else None
        )
        self.run_dir = config.run_directory
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "aggregator.signing.pub").write_text(self.signing_key.public.hex() + "\n")
        self.transcript = TranscriptWriter(self.run_dir / "transcript.jsonl", self.signing_key)
        self.queues: dict[int, asyncio.Queue] = {}
        self.round = 0
        self.secagg: SecAggServer | None = None
        self.accepting = False
        self.stage_event = asyncio.Event()
        self.uploaded: set[int] = set()
        # Stages run in their own thread (receiving goes on in the event loop); mask
        # removal fans out to worker processes. One pool for both deadlocked with
        # workers = 1: the stage thread waited on mask jobs queued behind itself.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="secagg-stage")
        self.mask_pool = (
            mask_worker_pool(config.workers, wait=False)
            if config.workers > 1 and federation.path_kind == "masking"
            else None
        )
        self.stopping = asyncio.Event()
        self.model_bytes = b""
        self.status: dict = {"state": "starting"}
        self.epsilon_history: list[dp.RoundRecord] = []
        self.ckks = None
        if federation.path_kind == "ckks":
            from node.ckks_rounds import CkksCoordinator

            self.ckks = CkksCoordinator(self)

    # -- status and records ----------------------------------------------------

    def set_status(self, **fields) -> None:
        self.status.update(fields, time=time.time())
        tmp = self.run_dir / "status.json.tmp"
        tmp.write_text(json.dumps(self.status))
        os.replace(tmp, self.run_dir / "status.json")

    def _write_metrics(self, row: dict) -> None:
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    # -- gRPC handlers ---------------------------------------------------------

    async def _peer(self, context) -> int:
        try:
            return transport.authenticate_peer(context, self.federation).id
        except transport.PeerRejected as exc:
            log.warning("rejected peer: %s", exc)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))

    async def Join(self, request, context):
        peer = await self._peer(context)
        if request.federation != self.federation.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "wrong federation name")
        if peer in self.queues:
            log.warning("participant %d opened a second event stream; refused", peer)
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS, "this participant already has an event stream"
            )
        queue: asyncio.Queue = asyncio.Queue()
        self.queues[peer] = queue
        log.info(
            "participant %d joined (%d/%d)",
            peer,
            len(self.queues),
            len(self.federation.participants),
        )
        self.stage_event.set()
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self.queues.pop(peer, None)
            log.info("participant %d left", peer)
            self.stage_event.set()  # whatever waits for this peer re-checks now
            if self.ckks is not None:
                self.ckks.event.set()

    async def Submit(self, request, context):
        peer = await self._peer(context)
        if request.HasField("ckks"):
            if self.ckks is None:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this run is not ckks")
            return await self.ckks.on_message(peer, request, context)
        if request.round != self.round:
            log.warning(
                "participant %d: message for round %d during round %d",
                peer,
                request.round,
                self.round,
            )
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"round {request.round} is not the current round"
            )
        if not self.accepting or self.secagg is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no stage is open")
        if self.secagg.stage is ServerStage.MASKED_INPUT:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "masked inputs go through UploadMaskedInput"
            )
        await self._deliver(peer, request.secagg, context)
        return fpb.Ack(accepted=True)

    async def UploadMaskedInput(self, request_iterator, context):
        peer = await self._peer(context)
        server = self.secagg
        if server is None or not self.accepting or server.stage is not ServerStage.MASKED_INPUT:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "no masked-input stage is open"
            )
        if peer in self.uploaded:
            log.warning("participant %d: duplicate upload stream refused", peer)
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, "masked input already uploaded")
        self.uploaded.add(peer)
        expected = server.dimension * wire.lane_dtype(server.bits).itemsize

        try:
            vector = await transport.receive_vector(
                request_iterator,
                expected_bytes=expected,
                round=self.round,
                session_id=server.session_id,
            )
        except transport.VectorTransferError as exc:
            log.warning("participant %d: upload refused: %s", peer, exc.detail)
            self.uploaded.discard(peer)
            await context.abort(exc.code, exc.detail)
        message = spb.ClientMessage(
            masked_input=spb.MaskedInput(
                session_id=server.session_id, sender=peer, vector=vector.data
            )
        ).SerializeToString()
        await self._deliver(peer, message, context)
        return fpb.Ack(accepted=True)

    async def GetModel(self, request, context):
        await self._peer(context)
        if request.round != self.round:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"round {request.round} is not the current round"
            )
        for chunk in transport.chunk_vector(self.model_bytes, fpb.VectorHeader(round=self.round)):
            yield chunk

    async def UploadCiphertext(self, request_iterator, context):
        if self.ckks is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this run is not ckks")
        return await self.ckks.upload(request_iterator, context)

    async def GetEncryptedSum(self, request, context):
        if self.ckks is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this run is not ckks")
        async for chunk in self.ckks.get_encrypted_sum(request, context):
            yield chunk

    async def UploadDecryptedSum(self, request_iterator, context):
        if self.ckks is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this run is not ckks")
        return await self.ckks.upload_decrypted_sum(request_iterator, context)

    async def _deliver(self, peer: int, data: bytes, context) -> None:
        if not self.accepting or self.secagg is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the stage closed")
        try:
            self.secagg.receive(peer, data)
        except ProtocolAbort as exc:
            log.warning("participant %d: message refused (%s)", peer, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if peer in self.secagg.refused:
            log.info("participant %d refused the round: %s", peer, self.secagg.refused[peer])
        if not self.secagg.expected().intersection(self.queues):
            self.stage_event.set()  # nobody still connected owes us a message

    # -- the rounds ------------------------------------------------------------

    async def broadcast(self, event_for: dict[int, fpb.AggregatorEvent]) -> None:
        for peer, event in event_for.items():
            queue = self.queues.get(peer)
            if queue is not None:
                queue.put_nowait(event)

    async def wait_for_participants(self) -> None:
        deadline = time.monotonic() + self.federation.deadlines["join"]
        wanted = len(self.federation.participants)
        while (
            len(self.queues) < wanted and time.monotonic() < deadline and not self.stopping.is_set()
        ):
            self.stage_event.clear()
            await self._wait(self.stage_event, deadline - time.monotonic())
        log.info("%d of %d participants joined", len(self.queues), wanted)

    async def run(self) -> int:
        from node import training

        fed = self.federation
        self.transcript.append(
            "run-start",
            {
                "federation": fed.name,
                "config_digest": hashlib.sha256(fed.path.read_bytes()).hexdigest(),
                "roster": [
                    {"name": m.name, "id": m.id, "fingerprint": m.fingerprint,
                     "signing_public_key": m.signing_public_key.hex()}
                    for m in fed.participants
                ],
                "dp": {
                    "epsilon_target": fed.dp.epsilon, "sigma": self.params.sigma,
                    "gamma": self.params.gamma, "delta": fed.dp.delta, "bits": fed.dp.bits,
                    "clip": fed.dp.clip, "dim": self.dim, "padded_dim": self.params.padded_dim,
                    "minimum_contributors": fed.dp.minimum_contributors,
                },
                "path": fed.path_kind,
                **({"ckks": {"committee": list(fed.ckks.committee)}} if fed.ckks else {}),
                "secagg": {
                    "graph": fed.secagg.graph, "corrupt_fraction": fed.secagg.threat.corrupt_fraction,
                    "dropout_fraction": fed.secagg.threat.dropout_fraction,
                    "lying_aggregator": fed.secagg.threat.lying_aggregator,
                },
            },
        )  # fmt: skip
        self.set_status(state="waiting", round=0, rounds=fed.rounds)
        await self.wait_for_participants()
        if self.evaluation is not None:
            accuracy = training.evaluate(self.model, *self.evaluation)
            self._write_metrics(
                {"round": 0, "accuracy": accuracy, "contributors": 0, "epsilon": 0.0}
            )
            self.set_status(accuracy=accuracy)
        completed = 0
        set_up = True
        if self.ckks is not None:
            from node.ckks_rounds import SetupFailed

            self.set_status(state="running", round=0, stage="ckks-setup")
            try:
                self.transcript.append("ckks-setup", await self.ckks.set_up())
            except SetupFailed as exc:
                log.error("ckks set-up failed: %s", exc)
                self.transcript.append("ckks-setup", {"path": "ckks", "failed": str(exc)})
                set_up = False
        for r in range(1, fed.rounds + 1):
            if self.stopping.is_set() or not set_up:
                break
            ok = await (self.ckks.run_round(r) if self.ckks is not None else self.run_round(r))
            completed += int(ok)
        eps = dp.epsilon_for(self.epsilon_history, fed.dp.delta)[0] if self.epsilon_history else 0.0
        final = self.run_dir / "model_final.pt"
        training.save_model(self.model, final)
        self.transcript.append(
            "run-end",
            {"rounds_completed": completed, "epsilon": eps, "delta": fed.dp.delta,
             "final_model_digest": training.model_digest(self.model).hex()},
        )  # fmt: skip
        self.set_status(state="finished", rounds_completed=completed, epsilon=eps)
        await self.broadcast(
            {
                p: fpb.AggregatorEvent(shutdown=fpb.Shutdown(reason="run finished"))
                for p in self.queues
            }
        )
        for q in self.queues.values():
            q.put_nowait(None)
        return 0 if completed else 1

    async def run_round(self, r: int) -> bool:

        fed = self.federation
        participants = sorted(self.queues)
        if len(participants) < max(3, fed.dp.minimum_contributors):
            log.error("round %d: only %d participants connected", r, len(participants))
            self.transcript.append(
                "round-aborted", {"round": r, "reason": "not-enough-participants", "stage": "join"}
            )
            return False
        self.round = r
        rotation_seed, application = self.prepare_round(r)
        p = self.params
        server = SecAggServer(
            signing_key=self.signing_key, roster=fed.roster, participants=participants,
            bits=p.bits, dimension=p.padded_dim, vector_name=f"update/round-{r}",
            federation=fed.name, round_number=r, application=application.SerializeToString(),
            threat=fed.secagg.threat, graph=fed.secagg.graph,
            minimum_aggregate=fed.dp.minimum_contributors,
            map_function=self.mask_pool.map if self.mask_pool else None,
            workers=self.config.workers,
        )  # fmt: skip
        self.secagg = server
        self.uploaded = set()
        log.info("round %d: %d participants invited", r, len(participants))
        outgoing = {u: server.start() for u in participants}
        dropped: dict[str, list[int]] = {}
        t_round = time.perf_counter()
        stage_seconds: dict[str, float] = {}
        for stage in STAGE_NAMES:
            self.set_status(state="running", round=r, stage=stage, contributors=len(outgoing))
            t0 = time.perf_counter()
            await self.broadcast(
                {u: fpb.AggregatorEvent(round=r, secagg=m) for u, m in outgoing.items()}
            )
            await self._collect(fed.deadlines[stage])
            if self.stopping.is_set():
                log.warning("round %d: shutting down during %s; nothing is released", r, stage)
                self.accepting = False
                server.close()
                abort = server.abort_message()
                await self.broadcast(
                    {u: fpb.AggregatorEvent(round=r, secagg=abort) for u in participants}
                )
                self.transcript.append(
                    "round-aborted", {"round": r, "reason": "shutdown", "stage": stage}
                )
                self.secagg = None
                return False
            before = set(outgoing)
            self.accepting = False
            try:
                outgoing = await asyncio.get_running_loop().run_in_executor(
                    self.executor, server.advance
                )
            except ProtocolAbort as exc:
                internal = exc.reason is AbortReason.INTERNAL_ERROR
                # an internal failure's traceback (code and exception, never locals) is
                # what the operator needs
                log.error("round %d aborted at %s: %s", r, stage, exc, exc_info=internal)
                if internal and self.mask_pool is not None:
                    # a dead worker breaks the pool for good: start a fresh one
                    self.mask_pool.shutdown(wait=False, cancel_futures=True)
                    self.mask_pool = mask_worker_pool(self.config.workers, wait=False)
                abort = server.abort_message()
                await self.broadcast(
                    {u: fpb.AggregatorEvent(round=r, secagg=abort) for u in participants}
                )
                self.transcript.append(
                    "round-aborted", {"round": r, "reason": exc.reason.value, "stage": stage}
                )
                await self._announce(r, released=False, reason=exc.reason.value)
                self.secagg = None
                return False
            stage_seconds[stage] = time.perf_counter() - t0
            heard = set(server.survivor_sets[-1])
            gone = sorted(before - heard - set(server.refused))
            if gone:
                # Transcript names: the stage whose message never came (hyphenated, as
                # the simulator and the auditor say); not advertising at all is "absent".
                dropped[stage.replace("_", "-") if stage != "advertise_keys" else "absent"] = gone
                log.info("round %d: %s: no answer from %s", r, stage, gone)
        u3 = server.survivor_sets[2]
        fields = {
            "config_digest": server.config_digest.hex(),
            "session_id": server.session_id.hex(),
            "survivor_sets": {f"U{i}": list(s) for i, s in server.u.items()},
            "dropped": {k: v for k, v in dropped.items() if k != "absent"},
            "absent": dropped.get("absent", []),
            "refused": dict(server.refused.items()),
            "misbehaving": {str(k): v.value for k, v in server.misbehaving.items()},
            "graph": {"k": server.params.k, "t": server.params.t, "full": server.params.full},
            "stage_seconds": stage_seconds,
        }
        await self.release_round(r, server.result, u3, rotation_seed, fields, t_round)
        self.secagg = None
        return True

    def prepare_round(self, r: int) -> tuple[bytes, fpb.RoundApplication]:
        """The round's model bytes (served by GetModel), rotation seed and application."""
        from node import training

        fed = self.federation
        flat = training.flatten_parameters(self.model)
        self.model_bytes = flat.astype("<f8").tobytes()
        rotation_seed = os.urandom(32)
        p = self.params
        application = fpb.RoundApplication(
            round=r,
            model_digest=training.model_digest(self.model),
            model_bytes=len(self.model_bytes),
            rotation_seed=rotation_seed,
            ddg=fpb.DdgParameters(
                clip=p.clip, bits=p.bits, gamma=p.gamma, sigma=p.sigma, clients=p.clients,
                dim=p.dim, beta=p.beta, wrap_prob=p.wrap_prob, delta=fed.dp.delta,
            ),
            training=fpb.TrainingParameters(
                epochs=fed.model.epochs, learning_rate=fed.model.learning_rate,
                batch_size=fed.model.batch_size,
            ),
        )  # fmt: skip
        return rotation_seed, application

    async def release_round(
        self, r: int, total: np.ndarray, contributors, rotation_seed: bytes, fields: dict,
        t_round: float, *, attestations=(),
    ) -> None:  # fmt: skip
        """Decode the released sum, FedAvg, evaluate, record and announce (both paths)."""
        from node import training

        fed, p = self.federation, self.params
        t0 = time.perf_counter()
        mean = dp.decode(total, self.params, rotation_seed, contributors=len(contributors))
        training.apply_update(self.model, mean, fed.model.server_learning_rate)
        accuracy = (
            training.evaluate(self.model, *self.evaluation) if self.evaluation is not None else None
        )
        decode_seconds = time.perf_counter() - t0
        record = dp.RoundRecord(
            contributors=len(contributors),
            sigma=p.sigma,
            gamma=p.gamma,
            clip=p.clip,
            padded_dim=p.padded_dim,
            beta=p.beta,
        )
        self.epsilon_history.append(record)
        eps = dp.epsilon_for(self.epsilon_history, fed.dp.delta)[0]
        sum_digest = hashlib.sha256(np.ascontiguousarray(total).tobytes()).hexdigest()
        body = {"round": r, **fields}
        body.update(
            dp_record=record.to_json(), sum_digest=sum_digest, epsilon=eps, delta=fed.dp.delta,
            accuracy=accuracy, decode_seconds=decode_seconds,
        )  # fmt: skip
        self.transcript.append("round", body)
        self._write_metrics(
            {"round": r, "accuracy": accuracy, "contributors": len(contributors), "epsilon": eps,
             "round_seconds": time.perf_counter() - t_round}
        )  # fmt: skip
        self.set_status(
            state="running",
            round=r,
            stage="done",
            contributors=len(contributors),
            accuracy=accuracy,
            epsilon=eps,
        )
        log.info(
            "round %d: released sum of %d contributors; accuracy %s; epsilon %.4f",
            r,
            len(contributors),
            accuracy,
            eps,
        )
        await self._announce(
            r, released=True, contributors=contributors, accuracy=accuracy or 0.0,
            attestations=attestations,
        )  # fmt: skip

    async def _announce(
        self, r: int, *, released: bool, contributors=(), reason: str = "", accuracy: float = 0.0,
        attestations=(),
    ):  # fmt: skip
        result = fpb.RoundResult(round=r, released=released, contributors=list(contributors),
                                 abort_reason=reason, accuracy=accuracy,
                                 attestations=list(attestations))  # fmt: skip
        await self.broadcast({u: fpb.AggregatorEvent(round=r, result=result) for u in self.queues})

    async def _collect(self, deadline_seconds: float) -> None:
        """Accept messages until everyone expected who is still connected has answered
        (a participant whose event stream ended will not) or the deadline passes."""
        deadline = time.monotonic() + deadline_seconds
        self.accepting = True
        while (
            self.secagg.expected().intersection(self.queues)
            and time.monotonic() < deadline
            and not self.stopping.is_set()
        ):
            self.stage_event.clear()
            await self._wait(self.stage_event, deadline - time.monotonic())

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until `event` is set, SIGTERM arrives, or `timeout` seconds pass."""
        waiters = {asyncio.create_task(event.wait()), asyncio.create_task(self.stopping.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()


async def serve(config: AggregatorConfig) -> int:
    aggregator = Aggregator(config)
    server = grpc.aio.server(options=transport.server_options())
    fgrpc.add_AggregationServicer_to_server(aggregator, server)
    health_servicer = (
        health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    creds = transport.server_credentials(
        config.key, config.certificate, config.federation.ca_certificate
    )
    port = server.add_secure_port(config.listen, creds)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    host = config.listen.rsplit(":", 1)[0]
    await server.start()
    address = f"{host}:{port}"
    (config.run_directory / "listening").write_text(address + "\n")
    log.info("aggregator listening on %s (mTLS)", address)
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, aggregator.stopping.set)
    run = asyncio.create_task(aggregator.run())
    stop = asyncio.create_task(aggregator.stopping.wait())
    done, _ = await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if run in done:
        status = run.result()
    else:
        log.info("SIGTERM: stopping after the current stage")
        try:
            status = await asyncio.wait_for(run, timeout=30)
        except TimeoutError:
            run.cancel()
            status = 1
    stop.cancel()
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace=2)
    aggregator.executor.shutdown(wait=False, cancel_futures=True)
    if aggregator.mask_pool is not None:
        aggregator.mask_pool.shutdown(wait=False, cancel_futures=True)
    if aggregator.ckks is not None:
        aggregator.ckks.executor.shutdown(wait=False, cancel_futures=True)
    return status


async def _set_health(servicer, status) -> None:
    result = servicer.set("", status)
    if asyncio.iscoroutine(result):
        await result
    result = servicer.set("blindsum.v1.Aggregation", status)
    if asyncio.iscoroutine(result):
        await result


def main_server(config_path: Path) -> int:
    from node.config import load_aggregator_config

    config = load_aggregator_config(config_path)
    return asyncio.run(serve(config))


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("server", help="run the aggregator of a federation")
    p.add_argument("--config", type=Path, required=True, help="the aggregator's TOML config")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    from node.config import ConfigError
    from node.logs import setup_logging

    setup_logging(args.log_level)
    try:
        return main_server(args.config)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"blindsum server: error: {exc}", file=sys.stderr)
        return 2
