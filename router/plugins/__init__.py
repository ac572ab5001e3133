"""The plugin host: discovery, isolation (budgets, breaker), delivery of events to sinks."""
