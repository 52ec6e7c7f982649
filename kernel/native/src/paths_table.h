/* Every path of paths.h, in its order, as a table: the addon's (addon.c) and the driver check's
 * (check/driver-12x16.c), so that both reach every listed path and nothing else. Included by one file of a
 * program: the table is that file's own. */
#ifndef HPAIR_PATHS_TABLE_H
#define HPAIR_PATHS_TABLE_H

#include "kernel.h"

#define HPAIR_PATH(name) extern const hpair_path hpair_path_##name;
#include "paths.h"
#undef HPAIR_PATH
#define HPAIR_PATH(name) &hpair_path_##name,
static const hpair_path *const hpair_paths[] = {
#include "paths.h"
};
#undef HPAIR_PATH
#define HPAIR_PATH_COUNT (sizeof hpair_paths / sizeof hpair_paths[0])

#endif
