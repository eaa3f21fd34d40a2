// An x86-64 object: its relocations are SHT_RELA with negative addends (PC-relative), unlike BPF's.
extern int external(int);
int table[10];
static int local = 3;
int lookup(int x) { return external(x + table[3] + local) + table[x]; }
