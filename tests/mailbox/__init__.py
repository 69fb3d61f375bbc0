"""Tests of newsletter/mailbox/."""
