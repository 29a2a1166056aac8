// Runs test code in a child process without root's privileges, for the tests of read-only
// files: permission bits do not bind root, so as root the child becomes nobody. The child's
// code reports with text, not with Catch assertions (those would stay in the child).
#pragma once

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

namespace test {

/// The user the child runs as when the tests run as root.
inline constexpr uid_t kNobody = 65534;

/// Collects what a child found wrong, one line each.
struct Findings {
  std::string text;
  /// Adds `what` when `ok` is false; returns `ok`.
  bool expect(bool ok, const std::string& what) {
    if (!ok) text += what + "\n";
    return ok;
  }
};

/// Runs `body` in a forked child that, when this process is root, drops to kNobody first.
/// Returns what the child found wrong ("" when nothing), or why it did not run to the end.
inline std::string unprivileged(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return std::string("pipe: ") + std::strerror(errno);
  const pid_t pid = fork();
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid == 0) {
    close(fds[0]);
    std::string out;
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)) {
      out = std::string("cannot drop root's privileges: ") + std::strerror(errno);
    } else {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      } catch (...) {
        out = "an exception that is not a std::exception";
      }
    }
    for (std::size_t done = 0; done < out.size();) {
      const ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    out += "the child did not exit normally (status " + std::to_string(status) + ")";
  return out;
}

/// Lets every user through `dir` and read what is in it (mkdtemp makes 0700 directories).
inline void open_to_all(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                           fs::perms::others_exec);
}

/// Read and traverse for all, write for none: a read-only mount as far as permissions go.
inline void make_read_only(const std::filesystem::path& p) {
  namespace fs = std::filesystem;
  const bool dir = fs::is_directory(p);
  auto perms = fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read;
  if (dir) perms |= fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  fs::permissions(p, perms);
}

}  // namespace test
