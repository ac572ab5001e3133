"""leadrouter plugin: Slack notifications (being written)."""
