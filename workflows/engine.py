"""The payment engine of one process: its commands, its recovery and its reads, over one pool.

    engine.payments   authorize, capture, cancel, refund; a payment's view   (commands.py)
    engine.recovery   the worker's pass over due runs; operators' replays    (recovery.py)
    engine.reads      listings, runs and their history                       (reads.py)

Each money-moving command is a run of three phases (runner.py); outcomes.py decides what an
answer changes, lifecycle.py what a payment allows.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from workflows.circuits import Circuits
from workflows.commands import Payments
from workflows.db import Database
from workflows.reads import Reads
from workflows.recovery import Recovery
from workflows.runner import EngineConfig, ProcessorDirectory, Runner

__all__ = ["Engine", "EngineConfig"]


class Engine:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        processors: ProcessorDirectory,
        config: EngineConfig | None = None,
        circuits: Circuits | None = None,
    ) -> None:
        self.db = Database(pool)
        self._processors = processors
        runner = Runner(self.db, processors, config or EngineConfig(), circuits)
        self.circuits = runner.circuits
        self.config = runner.config
        self.owner = runner.owner
        self.reads = Reads(self.db)
        self.payments = Payments(self.db, runner)
        self.recovery = Recovery(self.db, runner, self.payments, self.reads)

    async def aclose(self) -> None:
        await self._processors.aclose()
