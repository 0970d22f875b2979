"""Push: what the site watch and the daily advice send to people, through channels (a webhook, WeChat
subscribe messages), from a durable outbox so nothing is lost while a receiver is down."""
