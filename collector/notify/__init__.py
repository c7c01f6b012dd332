"""Notification channels (DingTalk, WeCom, e-mail, webhook, SMS) and the outbox that sends."""
