"""Gates: turnstile events and people-counter totals at the library entrances."""
