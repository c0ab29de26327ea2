# libgreet: the one function hello needs.
greet() { printf '%s\n' "$1"; }
