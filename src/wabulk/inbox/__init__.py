"""The Inbox: conversations with customers who reply, answered as a team (DESIGN §8).

- `conversations`: one per contact and sender, kept up to date by replies and answers;
  the list, a conversation's timeline, and the team's actions (assign, done, notes, opt-out).
- `quick_replies`: saved answers with the same placeholders as templates.
- `answers`: an answer written here is a campaign-less `Message`, sent by the dispatcher.
"""
