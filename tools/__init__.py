"""Command-line tools. They parse arguments, build configs and wire the library packages together;
they hold no algorithm."""
