/*
 * The pod sandbox's pause process, for the images scripts/kube-images.sh builds.
 *
 * It behaves like Kubernetes' own build/pause/linux/pause.c (Apache-2.0, The Kubernetes
 * Authors), which no reachable registry can give us here: it holds the pod's namespaces
 * by sleeping forever, exits 0 on SIGINT or SIGTERM (so stopping a sandbox is quick and
 * clean), and, as PID 1 of a pod that shares its PID namespace, reaps every child that
 * exits so no zombies pile up. `-v` prints the version and exits, as upstream's does.
 *
 * Built with `gcc -static`, so the image needs nothing but this one file.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define STRINGIFY(x) #x
#define VERSION_STRING(x) STRINGIFY(x)

#ifndef VERSION
#define VERSION HEAD
#endif

static void sigdown(int signo) {
    psignal(signo, "Shutting down, got signal");
    exit(0);
}

static void sigreap(int signo) {
    (void)signo;
    /* One SIGCHLD may stand for several exited children: reap them all. */
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        printf("pause.c %s\n", VERSION_STRING(VERSION));
        return 0;
    }
    if (getpid() != 1)
        /* Not an error: pause is also used outside of pod sandboxes. */
        fprintf(stderr, "Warning: pause should be the first process\n");

    if (sigaction(SIGINT, &(struct sigaction){.sa_handler = sigdown}, NULL) < 0)
        return 1;
    if (sigaction(SIGTERM, &(struct sigaction){.sa_handler = sigdown}, NULL) < 0)
        return 2;
    if (sigaction(SIGCHLD,
                  &(struct sigaction){.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP},
                  NULL) < 0)
        return 3;

    for (;;)
        pause();
    fprintf(stderr, "Error: infinite loop terminated\n");
    return 42;
}
