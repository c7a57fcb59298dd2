/* Preloaded into every process of `make SAN=1 test`: dlclose does nothing, so that the components Open MPI
 * loads with dlopen (and unloads in MPI_Finalize) are still mapped when LeakSanitizer reports at exit, and
 * their start-up allocations can be matched by tests/lsan.supp instead of showing as "<unknown module>". */
int dlclose(void *handle);
int dlclose(void *handle) {
    (void)handle;
    return 0;
}
