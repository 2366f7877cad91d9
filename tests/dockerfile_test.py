#!/usr/bin/python3
"""Checks the top-level Dockerfile's structure (no Docker engine here).

- One package list: `scripts/setup.sh --print-packages`, the Dockerfile's
  build-stage pipeline run on scripts/packages.txt, and this file's own
  reading of it give the same list, the build stage installs nothing else,
  and every package on it is installed on this machine (setup.sh ran).
- Stages: build (debian:12), runtime (debian:12-slim), and the targets
  esb-server, esb-worker, esb-agent and esbctl on it; each target runs its
  program as ENTRYPOINT, as a non-root user the chain creates.
- Each binary a target copies from the build stage links only libraries
  whose Debian packages (dpkg -S of what `ldd` lists for the built binary)
  the target's apt-get install names, and every package named is a real
  Debian package (installed here).
- The build stage builds every binary copied out of it.
- Every VOLUME is a directory the image creates owned by the target's
  user (a fresh volume takes that owner; root's would be unwritable).
- The serving targets' HEALTHCHECK is `esbctl health` on the port their
  CMD listens on (the worker, which serves no gRPC, checks its metrics
  port), and every flag of each CMD is one the binary takes.

Usage: dockerfile_test.py --source-dir DIR --binary NAME=PATH ...
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import unittest

ARGS = None

TARGETS = ("esb-server", "esb-worker", "esb-agent", "esbctl")


def parse_dockerfile(path):
    """Returns [(stage name, base, [(instruction, argument text)])]."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # A comment inside a continued instruction.
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    stages = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(),
                             re.IGNORECASE)
            if m is None:
                raise ValueError(f"FROM line not understood: {line}")
            stages.append((m.group(2) or "", m.group(1), []))
        elif not stages:
            raise ValueError(f"instruction before FROM: {line}")
        else:
            stages[-1][2].append((instruction, rest.strip()))
    return stages


def apt_installed_names(run_text):
    """The package names of every `apt-get install` in a RUN command."""
    names = []
    for command in re.split(r"&&|;|\|", run_text):
        words = shlex.split(command)
        for i in range(len(words) - 1):
            if words[i] == "apt-get" and words[i + 1] == "install":
                names += [w for w in words[i + 2:] if not w.startswith("-")]
    return names


_PACKAGES_OF_BINARY = {}


def packages_of_binary(binary):
    """Debian packages owning the shared libraries `ldd` lists for binary."""
    if binary in _PACKAGES_OF_BINARY:
        return _PACKAGES_OF_BINARY[binary]
    out = subprocess.run(["ldd", binary], check=True, capture_output=True,
                         text=True).stdout
    libs = re.findall(r"^\s*\S+ => (/\S+)", out, re.M)
    candidates = {}
    for lib in libs:
        paths = [lib, os.path.realpath(lib)]
        # usrmerge: dpkg may know /lib/... for a library found in /usr/lib/...
        paths += [p[len("/usr"):] for p in paths if p.startswith("/usr/")]
        candidates[lib] = paths
    # One dpkg -S for every path (it is slow to start): "pkg:arch: path".
    every = sorted({p for paths in candidates.values() for p in paths})
    r = subprocess.run(["dpkg", "-S"] + every, capture_output=True,
                       text=True)
    owner_of = {}
    for line in r.stdout.splitlines():
        owners, _, path = line.partition(": ")
        owner_of[path.strip()] = owners.split(",")[0].split(":")[0].strip()
    packages = set()
    for lib, paths in candidates.items():
        owner = next((owner_of[p] for p in paths if p in owner_of), None)
        if owner is None:
            raise AssertionError(f"{binary} links {lib}, which no Debian "
                                 "package owns")
        packages.add(owner)
    _PACKAGES_OF_BINARY[binary] = packages
    return packages


def installed(package):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    return r.returncode == 0 and "ok installed" in r.stdout


class DockerfileTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.src = ARGS.source_dir
        cls.stages = parse_dockerfile(os.path.join(cls.src, "Dockerfile"))
        cls.by_name = {name: (base, body) for name, base, body in cls.stages}
        cls.binaries = dict(b.split("=", 1) for b in ARGS.binary)

    def chain(self, name):
        """The stage and the stages it is built on, nearest first."""
        out = []
        while name in self.by_name:
            base, body = self.by_name[name]
            out.append((name, base, body))
            name = base
        return out

    def root_image(self, name):
        return self.chain(name)[-1][1]

    def instructions(self, name, kind, whole_chain=True):
        stages = self.chain(name) if whole_chain else self.chain(name)[:1]
        return [arg for _, _, body in stages for ins, arg in body
                if ins == kind]

    def test_stages(self):
        names = [name for name, _, _ in self.stages]
        for needed in ("build", "runtime") + TARGETS:
            self.assertIn(needed, names)
        self.assertEqual(self.by_name["build"][0], "debian:12")
        for target in TARGETS + ("runtime",):
            self.assertEqual(self.root_image(target), "debian:12-slim",
                             target)

    def package_file_list(self):
        words = []
        with open(os.path.join(self.src, "scripts/packages.txt"),
                  encoding="utf-8") as f:
            for line in f:
                words += line.split("#", 1)[0].split()
        return words

    def test_one_package_list(self):
        from_file = self.package_file_list()
        self.assertGreater(len(from_file), 10)
        self.assertEqual(len(from_file), len(set(from_file)), "duplicates")
        setup = subprocess.run(
            ["bash", os.path.join(self.src, "scripts/setup.sh"),
             "--print-packages"], check=True, capture_output=True,
            text=True).stdout.split()
        self.assertEqual(setup, from_file)
        with open(os.path.join(self.src, "scripts/setup.sh"),
                  encoding="utf-8") as f:
            self.assertNotRegex(f.read(), r"PACKAGES=\(",
                                "setup.sh has an inline list again")

        copies = self.instructions("build", "COPY")
        self.assertTrue(any(re.fullmatch(r"scripts/packages\.txt\s+(\S+)", c)
                            for c in copies), copies)
        runs = self.instructions("build", "RUN")
        installs = [r for r in runs if "apt-get install" in r]
        self.assertEqual(len(installs), 1, installs)
        self.assertEqual(apt_installed_names(installs[0]), [],
                         "the build stage names packages of its own")
        # Run the Dockerfile's own pipeline on the file, apt-get replaced by
        # a printer of its arguments.
        m = re.search(r"(sed .*?packages\.txt)\s*\|\s*xargs apt-get install"
                      r"((?:\s+-\S+)*)", installs[0])
        self.assertIsNotNone(m, installs[0])
        sed = m.group(1).replace("/src/scripts/packages.txt",
                                 shlex.quote(os.path.join(
                                     self.src, "scripts/packages.txt")))
        printed = subprocess.run(
            ["bash", "-c", f"{sed} | xargs printf '%s\\n'"], check=True,
            capture_output=True, text=True).stdout.split()
        self.assertEqual(printed, from_file)

        missing = [p for p in from_file if not installed(p)]
        self.assertEqual(missing, [], "packages.txt names packages that are "
                         "not installed (run scripts/setup.sh)")

    def copied_binaries(self, target):
        """{installed path: build-stage path} of COPY --from=build."""
        out = {}
        for arg in self.instructions(target, "COPY", whole_chain=False):
            words = arg.split()
            if words and words[0] == "--from=build":
                out[words[2]] = words[1]
        return out

    def test_build_stage_builds_what_is_copied(self):
        runs = " ".join(self.instructions("build", "RUN"))
        m = re.search(r"--target((?:\s+[\w-]+)+)", runs)
        self.assertIsNotNone(m)
        built = set(m.group(1).split())
        for target in TARGETS:
            for source in self.copied_binaries(target).values():
                name = os.path.basename(source)
                self.assertIn(name, built)
                self.assertIn(name, self.binaries)
                self.assertRegex(runs, r"install -s[^&]*build/\S+/" +
                                 re.escape(name) + r"\b")

    def test_runtime_packages_cover_the_libraries(self):
        for target in TARGETS:
            with self.subTest(target=target):
                copied = self.copied_binaries(target)
                self.assertIn(f"/usr/local/bin/{target}", copied)
                names = []
                for run in self.instructions(target, "RUN"):
                    names += apt_installed_names(run)
                self.assertTrue(names)
                for source in copied.values():
                    binary = self.binaries[os.path.basename(source)]
                    needed = packages_of_binary(binary)
                    self.assertIn("libc6", needed)  # ldd did list libraries.
                    self.assertEqual(sorted(needed - set(names)), [],
                                     f"{target}: {source} needs these")
                not_debian = [p for p in names if not installed(p)]
                self.assertEqual(not_debian, [], target)

    def test_non_root_user(self):
        for target in TARGETS:
            with self.subTest(target=target):
                users = self.instructions(target, "USER")
                self.assertTrue(users, "no USER")
                user = users[0]
                self.assertNotIn(user.split(":")[0], ("root", "0"))
                created = []
                for run in self.instructions(target, "RUN"):
                    for command in re.split(r"&&|;", run):
                        words = shlex.split(command)
                        if words and words[0] == "useradd":
                            created.append(words[-1])
                self.assertIn(user, created)
                # USER comes after the last RUN of the target's own stage.
                body = self.chain(target)[0][2]
                kinds = [ins for ins, _ in body]
                last_run = max(i for i, k in enumerate(kinds) if k == "RUN")
                self.assertGreater(kinds.index("USER"), last_run)

    def test_volumes_belong_to_the_user(self):
        for target in TARGETS:
            with self.subTest(target=target):
                user = self.instructions(target, "USER")[0]
                owned = set()
                for run in self.instructions(target, "RUN"):
                    for command in re.split(r"&&|;", run):
                        words = shlex.split(command)
                        if words[:2] == ["install", "-d"] and \
                                "-o" in words and \
                                words[words.index("-o") + 1] == user:
                            owned.update(w for w in words if
                                         w.startswith("/"))
                for volume in self.instructions(target, "VOLUME"):
                    self.assertIn(volume, owned)
                    # Under the user's home (useradd --home-dir).
                    self.assertTrue(volume.startswith("/var/lib/esb/"))

    def exec_form(self, text):
        import json
        m = re.match(r"(?:--\S+\s+)*CMD\s+(\[.*\])$", text) or re.match(
            r"(\[.*\])$", text)
        self.assertIsNotNone(m, text)
        return json.loads(m.group(1))

    def flags_taken(self, binary):
        r = subprocess.run([binary, "--helpfull"], capture_output=True,
                           text=True)
        return set(re.findall(r"^\s+--(\w+)", r.stdout + r.stderr, re.M))

    def test_entrypoints_flags_and_health_checks(self):
        for target in TARGETS:
            with self.subTest(target=target):
                entry = self.exec_form(
                    self.instructions(target, "ENTRYPOINT")[-1])
                self.assertEqual(entry, [f"/usr/local/bin/{target}"])
                if target == "esbctl":
                    continue
                cmd = self.exec_form(self.instructions(target, "CMD")[-1])
                taken = self.flags_taken(self.binaries[target])
                self.assertGreater(len(taken), 3)
                for word in cmd:
                    if word.startswith("--"):
                        self.assertIn(word[2:].replace("-", "_"), taken, word)
                health = self.instructions(target, "HEALTHCHECK")
                self.assertEqual(len(health), 1)
                check = self.exec_form(health[0])
                expose = " ".join(self.instructions(target, "EXPOSE")).split()
                if target == "esb-worker":
                    port = cmd[cmd.index("--metrics-port") + 1]
                    self.assertEqual(check[:2], ["bash", "-c"])
                    self.assertIn(f"/dev/tcp/127.0.0.1/{port}", check[2])
                    self.assertEqual(cmd[cmd.index("--metrics-host") + 1],
                                     "0.0.0.0")
                else:
                    listen = cmd[cmd.index("--listen") + 1]
                    port = listen.rsplit(":", 1)[1]
                    self.assertEqual(check, [
                        "/usr/local/bin/esbctl", "health", "--server",
                        f"127.0.0.1:{port}"])
                    self.assertIn("/usr/local/bin/esbctl",
                                  self.copied_binaries(target))
                    self.assertIn(
                        cmd[cmd.index("--metrics-port") + 1], expose)
                self.assertIn(port, expose)

    def test_dockerignore_keeps_the_build_tree_out(self):
        with open(os.path.join(self.src, ".dockerignore"),
                  encoding="utf-8") as f:
            ignored = f.read().split()
        self.assertIn("build/", ignored)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--binary", action="append", default=[],
                        help="NAME=PATH of a built binary")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
