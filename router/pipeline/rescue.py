"""A stream that breaks after its first byte (cut, stalled, corrupted) goes on elsewhere, so the client sees
one uninterrupted answer:

- nothing of the answer has reached the client yet: the request starts again on the next target;
- some of it has: the answer is continued on a target that can take a prefill: the conversation goes with
  the partial answer as its last assistant message, and the model writes on from there. vLLM pools can
  (the transport adds ``continue_final_message: true`` and ``add_generation_prompt: false``); a frontier
  cluster can when its policy says ``prefill: true`` (Anthropic's models continue a prefill). Others (other
  OpenAI-compatible servers, providers not so marked) are not asked: one that ignored the prefill would
  start the answer over, and the client would read it twice.

Never for several choices or tool calls, and never at the cost of the original failure: if no target takes
the continuation (a refusal of the prefill included), the stream ends with the original error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

import orjson

from router.api.chat import ChatRequest, parse_chat_request
from router.errors import RouterError
from router.pipeline.attempts import OpenStream
from router.pipeline.failover import Failover
from router.policy.schema_limits import RequestLimits
from router.types import Decision, RequestOutcome
from router.upstream.transport.base import Completion
from router.upstream.upstreams import Upstreams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resumed:
    stream: OpenStream
    how: str  # continued | restarted


@dataclass(frozen=True)
class Rescue:
    """What the relay needs to take a broken stream elsewhere: the request and its place in the chain."""

    failover: Failover
    upstreams: Upstreams
    chat: ChatRequest
    headers: Mapping[str, str]
    decision: Decision
    outcome: RequestOutcome
    deadline: float | None
    limits: RequestLimits

    async def resume(self, broken: OpenStream, sent: str) -> Resumed | None:
        """A new stream that goes on from ``sent`` (the content the client has so far), or None."""
        if self.chat.choices > 1 or any(b'"tool_calls"' in d for d in broken.stream.state.raw):
            return None
        tried = {(broken.cluster.name, broken.endpoint.url)}
        targets = (
            self.decision.targets if not sent else tuple(t for t in self.decision.targets if self._prefills(t.cluster))
        )
        if not targets:
            return None
        how = "continued" if sent else "restarted"
        try:
            chat = self._continuation(sent) if sent else self.chat  # a continuation past the limits is refused
            decision = replace(self.decision, targets=targets)
            result = await self.failover.run(
                self.upstreams, chat, self.headers, decision, self.outcome, self.deadline, tried
            )
        except RouterError as exc:  # no target took it: the original break is what the client hears
            log.info("stream rescue found no target: %s", exc.message)
            return None
        if isinstance(result, Completion):  # cannot happen for a stream; never relay it as one
            return None
        return Resumed(result, how)

    def _prefills(self, cluster: str) -> bool:
        """Whether a cluster continues a partial answer: vLLM pools do; a provider when the policy says so."""
        c = self.upstreams.get(cluster)
        if c is None:
            return False
        cfg = c.config
        return cfg.kind == "vllm" or (cfg.kind == "frontier" and cfg.prefill)

    def _continuation(self, sent: str) -> ChatRequest:
        """The request with the partial answer as its last message; each transport says "continue it" its
        own way (vLLM: ``continue_final_message``; a provider that takes a prefill needs nothing more)."""
        messages = [*self.chat.body["messages"], {"role": "assistant", "content": sent}]
        return replace(
            parse_chat_request(orjson.dumps({**self.chat.body, "messages": messages}), self.limits), continues=True
        )
