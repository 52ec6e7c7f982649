/* The list of native paths: the only place the addon learns of them. One line per path, in the order `auto`
 * prefers them where they run (the widest ISA first, the portable C path last); each names the record its file
 * defines (hpair_path_<name>, kernel.h). info() publishes them in this order. */
HPAIR_PATH(avx512)
HPAIR_PATH(avx2)
HPAIR_PATH(portable)
