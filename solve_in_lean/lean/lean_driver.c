/* A `lean` executable around the Lean front end and kernel in libleanshared.so.
 * lean_main parses the usual command line (--json, --stdin, --version, -o, ...). */
extern int lean_main(int argc, char **argv);

int main(int argc, char **argv) { return lean_main(argc, argv); }
