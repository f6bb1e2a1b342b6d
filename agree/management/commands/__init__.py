"""One module per ``agree-manage`` command; the module name is the command name and the module
defines ``Command``, a :class:`agree.management.base.BaseCommand` subclass."""
