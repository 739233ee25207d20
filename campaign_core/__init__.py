"""The campaign domain (pure): triggers, eligibility, offers, journeys, contact policy. Filled by issue #7."""
