"""Developer tools: what a developer runs, never shipped in the image (deploy/Dockerfile leaves it out).

- `commands`: the developer subcommands of `switchboard` (run, broker, publish, simulate), added to
  services/cli through the "switchboard.commands" entry point;
- `supervisor`: `switchboard run` / `make run`, the local stack as processes;
- `simulate`: demo traffic (the simulator the bench and the reliability tests drive too);
- `broker`: finds or starts a real Kafka broker for `make run`, the tests and the bench;
- `agent_json`: agent events from their JSON form (`switchboard publish`, the simulator).

The dependency goes one way: this package imports services/, services/ never imports it
(tests/unit/test_architecture.py).
"""
