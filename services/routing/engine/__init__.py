"""The ACD core: a pure, deterministic routing engine.

`RoutingEngine.handle(event, now)` applies one input event at time `now` (seconds since the
epoch, supplied by the caller) and returns the decisions it caused. There is no I/O, no clock, no
randomness: the same events at the same times always give the same outputs.

How the state is indexed (tenants are fully independent):

- Contacts of a queue are split into *groups*: contacts with the same channel and the same
  effective requirements (queue skills + contact skills, languages, as widened by the relaxation
  step the contact is at). Each group keeps its waiting contacts in one sorted list, best last.
  The sort key is static: with effective priority ``priority + aging × minutes waited (+ SLA
  boost)`` and the same aging rate for the whole queue, ``priority - aging × enqueued_at / 60``
  orders the contacts the same way at any `now`. An SLA boost re-inserts the contact once, when
  its boost time comes; a relaxation step moves it to the group of its wider requirements.
- A waiting contact reserved for its preferred agent sits in that agent's own list instead (only
  that agent looks there); one accepted while its queue is closed sits in no list until the
  opening.
- Each agent knows the groups it qualifies for, and each group keeps a heap of its *available*
  agents ordered by the queue's agent-selection key. Entries carry the agent's version; any change
  to the agent bumps it, so outdated entries are dropped lazily when they reach the top.
- After every event no available agent and eligible waiting contact are left unmatched. Only
  the agent or contact an event touched can form a new pair, so dispatch looks at just that one:
  an agent that frees up scans the heads of its groups; an arriving contact peeks at its
  group's heap.
- Timers (wrap-up, offer, max wait, relaxation step, overflow, preferred-agent expiry, opening)
  are checked against the state when they fire, and fire in an order that depends only on their
  due time and the entity (never on when they were pushed). That is what lets `load_tenant`
  rebuild them from the state records alone and behave exactly as the engine it replaces.
- Every entity an event changes is marked; `drain_changes` turns the marks into state records.

Where each part lives: `facade` (RoutingEngine), `tenant` (one tenant's state and event
dispatch), `contacts` (contact events, ends), `agents` (the agent state machine), `waiting`
(waiting lists and their order), `steps` (timers: relaxation, overflow, max wait, callbacks,
wrap-up, offers), `matching`, `indexes` (groups and who qualifies), `stats` (position, estimated
wait, queue statistics), `records` (state records), `rules` (pure rules), `model` (the state).
"""

from services.common.hours import is_open

from .facade import RoutingEngine
from .model import STATE_VERSION, Change

__all__ = ["STATE_VERSION", "Change", "RoutingEngine", "is_open"]
