"""Settings of an agree node: the typed ``Settings``, its defaults and its loading."""
