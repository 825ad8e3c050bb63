"""Approvals from chat: pending actions are posted to a Slack channel with Approve / Reject.

Setting it up (all three settings are needed; without them nothing is posted and the endpoint
answers 404 naming what is missing):

- A Slack app with a bot token (SLACK_BOT_TOKEN) holding the scopes chat:write (post and
  update the request), users:read and users:read.email (match a Slack user to an opsdash user
  by email); the bot invited to the channel named by SLACK_APPROVALS_CHANNEL (an id, C…).
- Interactivity on, with the Request URL <SITE_URL>/integrations/slack/interactions, and the
  app's signing secret in SLACK_SIGNING_SECRET.
- People are matched by a Slack user link (Django admin) or, failing that, by the email Slack
  has for them; they need the approver role in opsdash.
"""
