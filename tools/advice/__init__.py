"""Daily crop advice per greenhouse zone: the day's readings against the crop stage's targets
(``day_summary``), the advice kept once per (zone, date) in SQLite (``store``), handed to the push
outbox (``push_source``); its settings (``settings``). The cited recommendations are composed by
the agent side (``assistant/advice.py``): this package never imports from ``assistant``.
"""
