// Runs a tool as a user runs it (no shell), for the CLI tests: its exit code, stdout, stderr.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace test {

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Result {
  int code = -1;
  std::string out, err;
};

/// Who runs the tool: this process's user, or (when that is root) nobody, whom permission bits bind.
enum class As { Self, Unprivileged };

/// How long a tool may run before it is killed and the run reported as hung.
inline constexpr std::chrono::seconds kToolTimeout{120};

/// Runs `tool` with `args`, `env` added to this process's environment; stdout and stderr are
/// captured apart so that JSON output can be parsed. Returns why it could not run or did not
/// exit within `timeout` ("" when it did); no Catch assertion, so that forked test workers may
/// call it.
inline std::string spawn(const std::string& tool, const std::vector<std::string>& args,
                         const std::vector<std::string>& env, Result& r, As as = As::Self,
                         std::chrono::milliseconds timeout = kToolTimeout) {
  static std::atomic<int> serial{0};
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string tag = std::to_string(getpid()) + "-" + std::to_string(serial++);
  const std::string out_path = (dir / ("rnnjit-cli-out-" + tag)).string();
  const std::string err_path = (dir / ("rnnjit-cli-err-" + tag)).string();
  std::vector<std::string> argv_s = {tool};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);  // earlier entries win
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0 || err_fd < 0) return std::string("cannot create the output files: ") + std::strerror(errno);
  const bool drop = as == As::Unprivileged && geteuid() == 0;
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    if (dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
    if (drop && (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)) _exit(125);
    execve(tool.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  if (pid < 0) return std::string("fork: ") + std::strerror(errno);
  int status = 0;
  pid_t waited = 0;
  bool hung = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (auto pause = std::chrono::microseconds(200);; pause = std::min(2 * pause, std::chrono::microseconds(20000))) {
    waited = waitpid(pid, &status, WNOHANG);
    if (waited != 0 && !(waited < 0 && errno == EINTR)) break;
    if (!hung && std::chrono::steady_clock::now() > deadline) {
      hung = true;
      kill(pid, SIGKILL);  // then reaped by the next waitpid
    }
    std::this_thread::sleep_for(pause);
  }
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  std::filesystem::remove(out_path);
  std::filesystem::remove(err_path);
  if (waited != pid) return "waitpid failed";
  if (hung) return tool + " did not finish within " + std::to_string(timeout.count()) + " ms (killed)";
  if (!WIFEXITED(status)) return tool + " exited abnormally (status " + std::to_string(status) + "); stderr: " + r.err;
  r.code = WEXITSTATUS(status);
  if (r.code == 125) return "cannot drop root's privileges to run " + tool;
  if (r.code == 127 && r.out.empty() && r.err.empty()) return "cannot run " + tool;
  return {};
}

/// spawn() inside a test: anything but an exit is a failed assertion.
inline Result run(const std::string& tool, const std::vector<std::string>& args,
                  const std::vector<std::string>& env = {}, As as = As::Self,
                  std::chrono::milliseconds timeout = kToolTimeout) {
  Result r;
  const std::string why = spawn(tool, args, env, r, as, timeout);
  INFO(why);
  REQUIRE(why.empty());
  return r;
}

}  // namespace test
