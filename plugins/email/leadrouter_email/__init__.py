"""leadrouter plugin: email notifications (being written)."""
