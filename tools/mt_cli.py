"""What the Python programs in tools/ (bin/instruct, bin/plot) share: meshtrain's command-line conventions,
usage and bad input as one line on stderr with exit code 2."""
import argparse
import sys


class BadInput(Exception):
    """A bad file, value or environment: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with the help text taken from the program's docstring and one-line usage errors."""

    def __init__(self, prog=None, doc=None, **kw):  # subcommands' parsers come without doc
        if doc:
            head, _, rest = doc.partition("\n\n")
            kw.update(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
        super().__init__(prog=prog, **kw)

    def error(self, message):
        print(f"{self.prog}: {message} (--help for usage)", file=sys.stderr)
        sys.exit(2)


def run(prog, body, *args):
    """body(*args), with BadInput turned into one line and exit code 2."""
    try:
        return body(*args)
    except BadInput as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(2)
