/*
 * test-daemon-layers.c — the daemon's folders keep their seams: a check of
 * the source tree itself (src/daemon), by its #include lines — a call into
 * another file needs that file's header, so the include graph bounds the
 * call graph.
 *
 *   1. Folders depend one way: core on nothing of the daemon; flows on core;
 *      names, models, hosts and monitor on flows and core; directory also on
 *      names and hosts (it publishes registrations and hands the hosts it
 *      finds to the hosts' search); groups on core.
 *      Only src/daemon/modules.c (the table of modules) names them all. A
 *      folder not in the table below fails the test: a new folder says here
 *      what it may use.
 *   2. Within a folder, no circle of includes takes in every file: a folder
 *      whose files all depend on each other is the symptom issue 9 named.
 * The strongly connected components of each folder are printed.
 */
#include <dirent.h>
#include <stdio.h>

#include "common/util.h"
#include "support/test.h"

#define FILES_MAX 64

static const char *const folders[] = { "core", "flows", "names", "models", "groups", "hosts",
                                        "directory", "monitor" };
#define N_FOLDERS 8

/* may[i][j]: folder i may include folder j. */
static const bool may[N_FOLDERS][N_FOLDERS] = {
        /*               core  flows  names  models groups hosts  directory monitor */
        /* core      */ { 1,    0,     0,     0,     0,     0,     0,        0 },
        /* flows     */ { 1,    1,     0,     0,     0,     0,     0,        0 },
        /* names     */ { 1,    1,     1,     0,     0,     0,     0,        0 },
        /* models    */ { 1,    1,     0,     1,     0,     0,     0,        0 },
        /* groups    */ { 1,    0,     0,     0,     1,     0,     0,        0 },
        /* hosts     */ { 1,    1,     0,     0,     0,     1,     0,        0 },
        /* directory */ { 1,    1,     1,     0,     0,     1,     1,        0 },
        /* monitor   */ { 1,    1,     0,     0,     0,     0,     0,        1 },
};

typedef struct unit {
        char name[64];          /* "alloc" for alloc.c / alloc.h */
        bool edge[FILES_MAX];   /* includes the header of unit j (same folder) */
} unit;

static int folder_index(const char *name, size_t len) {
        for (int i = 0; i < N_FOLDERS; i++)
                if (strlen(folders[i]) == len && strncmp(folders[i], name, len) == 0)
                        return i;
        return -1;
}

static int unit_of(unit *u, unsigned *n, const char *name, size_t len) {
        for (unsigned i = 0; i < *n; i++)
                if (strlen(u[i].name) == len && strncmp(u[i].name, name, len) == 0)
                        return (int)i;
        CHECK(*n < FILES_MAX && len < sizeof(u[0].name));
        memcpy(u[*n].name, name, len);
        u[*n].name[len] = 0;
        return (int)(*n)++;
}

/* Tarjan's strongly connected components over the units of one folder. */
static unsigned tj_index, tj_stack[FILES_MAX], tj_sp, tj_idx[FILES_MAX], tj_low[FILES_MAX];
static bool tj_on[FILES_MAX], tj_seen[FILES_MAX];
static unsigned largest;

static void strongconnect(const unit *u, unsigned n, unsigned v, const char *folder) {
        tj_idx[v] = tj_low[v] = tj_index++;
        tj_seen[v] = true;
        tj_stack[tj_sp++] = v;
        tj_on[v] = true;
        for (unsigned w = 0; w < n; w++) {
                if (!u[v].edge[w] || w == v)
                        continue;
                if (!tj_seen[w]) {
                        strongconnect(u, n, w, folder);
                        tj_low[v] = MIN(tj_low[v], tj_low[w]);
                } else if (tj_on[w]) {
                        tj_low[v] = MIN(tj_low[v], tj_idx[w]);
                }
        }
        if (tj_low[v] != tj_idx[v])
                return;
        unsigned size = 0;
        char members[512] = "";
        unsigned w;
        do {
                w = tj_stack[--tj_sp];
                tj_on[w] = false;
                size++;
                strncat(members, " ", sizeof(members) - strlen(members) - 1);
                strncat(members, u[w].name, sizeof(members) - strlen(members) - 1);
        } while (w != v);
        if (size > 1)
                printf("  %s: circle of %u files:%s\n", folder, size, members);
        if (size > largest)
                largest = size;
}

TEST(folders_depend_one_way_and_no_circle_spans_a_folder) {
        unsigned checked = 0;
        /* Every folder of src/daemon is in the table. */
        char *top = test_source_path("src/daemon");
        DIR *tp = opendir(top);
        CHECK(tp != NULL);
        struct dirent *te;
        while ((te = readdir(tp))) {
                if (te->d_name[0] == '.' || strchr(te->d_name, '.'))
                        continue;
                if (folder_index(te->d_name, strlen(te->d_name)) < 0)
                        test_fail(__FILE__, __LINE__, "src/daemon/%s: a folder the layers do not know",
                                  te->d_name);
        }
        closedir(tp);
        free(top);
        for (int f = 0; f < N_FOLDERS; f++) {
                char rel[64];
                snprintf(rel, sizeof(rel), "src/daemon/%s", folders[f]);
                char *dir = test_source_path(rel);
                DIR *dp = opendir(dir);
                CHECK(dp != NULL);
                static unit u[FILES_MAX];
                unsigned n = 0;
                memset(u, 0, sizeof(u));
                struct dirent *de;
                while ((de = readdir(dp))) {
                        size_t len = strlen(de->d_name);
                        if (len < 3 || de->d_name[len - 2] != '.' ||
                            (de->d_name[len - 1] != 'c' && de->d_name[len - 1] != 'h'))
                                continue;
                        int from = unit_of(u, &n, de->d_name, len - 2);
                        char path[512];
                        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                        FILE *fp = fopen(path, "r");
                        CHECK(fp != NULL);
                        char line[512];
                        while (fgets(line, sizeof(line), fp)) {
                                const char *p = "#include \"daemon/";
                                if (strncmp(line, p, strlen(p)) != 0)
                                        continue;
                                const char *fold = line + strlen(p), *slash = strchr(fold, '/');
                                CHECK(slash != NULL);
                                int to = folder_index(fold, (size_t)(slash - fold));
                                const char *file = slash + 1, *dot = strchr(file, '.');
                                CHECK(dot != NULL);
                                if (to < 0 || !may[f][to])
                                        test_fail(__FILE__, __LINE__, "%s includes %.*s: %s is below it",
                                                  path, (int)(dot - fold), fold,
                                                  to < 0 ? "src/daemon/modules" : folders[to]);
                                if (to == f)
                                        u[from].edge[unit_of(u, &n, file, (size_t)(dot - file))] = true;
                                checked++;
                        }
                        fclose(fp);
                }
                closedir(dp);
                free(dir);
                tj_index = tj_sp = 0;
                largest = 0;
                memset(tj_seen, 0, sizeof(tj_seen));
                for (unsigned v = 0; v < n; v++)
                        if (!tj_seen[v])
                                strongconnect(u, n, v, folders[f]);
                printf("  %s: %u files, largest circle %u\n", folders[f], n, largest);
                if (n > 1 && largest == n)
                        test_fail(__FILE__, __LINE__, "a circle of includes spans all of %s", folders[f]);
        }
        CHECK(checked > 50);
}
