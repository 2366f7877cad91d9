#include "fpga_agent/model_repository.h"

#include <memory>
#include <sstream>
#include <string>

#include "core/env/digest.h"
#include "core/env/fault_env.h"
#include "core/env/mem_env.h"
#include "core/runtime/cpu_paths.h"
#include "fpga_agent/sim_backend.h"
#include "fpga_agent/test_package.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kDir[] = "/models";

class ModelRepositoryTest : public ::testing::Test {
 protected:
  ModelRepositoryTest()
      : env_(NewMemEnv()), backend_(env_.get(), SimBackendOptions{}) {}

  std::unique_ptr<ModelRepository> Open(Env* env = nullptr) {
    ModelRepositoryOptions options;
    options.dir = kDir;
    options.batcher.max_batch = 4;
    auto repo = ModelRepository::Open(env == nullptr ? env_.get() : env,
                                      &backend_, nullptr, options, &log_);
    EXPECT_TRUE(repo.ok()) << repo.status();
    return repo.ok() ? *std::move(repo) : nullptr;
  }

  static const std::string& Esbm() { return testing::DemoEsbm(); }
  static std::string Sha() { return Sha256Hex(Esbm()); }

  std::unique_ptr<Env> env_;
  SimBackend backend_;
  std::ostringstream log_;
};

TEST(ValidateNameTest, NamesTheRuleABadNameBreaks) {
  EXPECT_TRUE(ValidateName("mnist-esb_v2.1").ok());
  EXPECT_TRUE(ValidateName(std::string(64, 'a')).ok());
  struct Case {
    std::string name;
    std::string message;
  };
  for (const Case& c :
       {Case{"", "is empty"}, Case{std::string(65, 'a'), "at most 64"},
        Case{".", "not allowed"}, Case{"..", "not allowed"},
        Case{"a/b", "only letters, digits"},
        Case{"../etc", "only letters, digits"},
        Case{"a b", "only letters, digits"},
        Case{std::string("a\0b", 3), "only letters, digits"}}) {
    absl::Status s = ValidateName(c.name);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.name;
    EXPECT_THAT(s.message(), HasSubstr("model name"));
  }
}

TEST_F(ModelRepositoryTest, DeploysAddVersionsAndTheLatestIsServed) {
  auto repo = Open();
  ASSERT_NE(repo, nullptr);
  auto v1 = repo->Deploy("lenet", Sha(), Esbm());
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ((*v1)->version, 1);
  EXPECT_EQ((*v1)->sha256, Sha());
  // The executor's path on this CPU (the exact f32 one on the board's).
  absl::StatusOr<runtime::CpuPaths> cpu = runtime::DetectCpuPaths();
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  // LeNet's middle layers (4-bit weights, unsigned inputs) take the int8
  // path on every x86-64 CPU.
  EXPECT_THAT((*v1)->description,
              HasSubstr(cpu->no_int8_reason.empty()
                            ? "sim: int8 fast path"
                            : "sim: exact f32 path on 4 of 4 layers"));
  EXPECT_TRUE(env_->FileExists("/models/lenet/1/model.esbm"));
  auto v2 = repo->Deploy("lenet", Sha(), Esbm());
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ((*v2)->version, 2);
  absl::StatusOr<std::string> stored =
      ReadFileToString(env_.get(), "/models/lenet/2/model.esbm");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, Esbm());

  auto latest = repo->Get("lenet", 0);
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ((*latest)->version, 2);
  EXPECT_EQ((*latest)->signature->input.shape,
            (std::vector<int64_t>{-1, 1, 28, 28}));
  EXPECT_EQ((*latest)->signature->max_batch, 4);
  auto old = repo->Get("lenet", 1);
  EXPECT_TRUE(absl::IsNotFound(old.status()));
  EXPECT_THAT(old.status().message(), HasSubstr("stored but not served"));
  auto none = repo->Get("other", 0);
  EXPECT_TRUE(absl::IsNotFound(none.status()));
  EXPECT_THAT(none.status().message(), HasSubstr("'other' is not deployed"));

  const std::vector<StoredVersion> list = repo->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_FALSE(list[0].serving);
  EXPECT_TRUE(list[1].serving);
  EXPECT_EQ(list[1].max_batch, 4);
  EXPECT_EQ(list[0].size, static_cast<int64_t>(Esbm().size()));
  EXPECT_EQ(repo->served_count(), 1);
}

TEST_F(ModelRepositoryTest, NothingIsStoredForABadDeploy) {
  auto repo = Open();
  ASSERT_NE(repo, nullptr);
  auto bad_name = repo->Deploy("../x", Sha(), Esbm());
  EXPECT_TRUE(absl::IsInvalidArgument(bad_name.status()));
  EXPECT_THAT(bad_name.status().message(), HasSubstr("only letters"));

  auto mismatch = repo->Deploy("m", Sha256Hex("other bytes"), Esbm());
  EXPECT_TRUE(absl::IsInvalidArgument(mismatch.status()));
  EXPECT_THAT(
      mismatch.status().message(),
      HasSubstr(absl::StrCat("sha256 mismatch: declared ",
                             Sha256Hex("other bytes"), ", received ", Sha())));

  std::string corrupt = Esbm();
  corrupt[corrupt.size() / 2] ^= 0x40;
  auto damaged = repo->Deploy("m", Sha256Hex(corrupt), corrupt);
  EXPECT_TRUE(absl::IsInvalidArgument(damaged.status()));
  EXPECT_THAT(damaged.status().message(), HasSubstr("checksum mismatch"));

  auto garbage = repo->Deploy("m", Sha256Hex("ESBMxx"), "ESBMxx");
  EXPECT_TRUE(absl::IsInvalidArgument(garbage.status()));
  EXPECT_THAT(garbage.status().message(), HasSubstr("truncated"));

  EXPECT_FALSE(env_->FileExists("/models/m"));
  EXPECT_TRUE(repo->List().empty());
}

TEST_F(ModelRepositoryTest, AFailedWriteLeavesNothingServed) {
  FaultInjectionEnv faulty(env_.get());
  auto repo = Open(&faulty);
  ASSERT_NE(repo, nullptr);
  faulty.SetDiskSpace(100);
  auto full = repo->Deploy("lenet", Sha(), Esbm());
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  EXPECT_TRUE(absl::IsNotFound(repo->Get("lenet", 0).status()));
  EXPECT_FALSE(env_->FileExists("/models/lenet/1/model.esbm"));
  faulty.SetDiskSpace(-1);
  // The next deploy takes a fresh version number.
  auto ok = repo->Deploy("lenet", Sha(), Esbm());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->version, 2);
}

TEST_F(ModelRepositoryTest, StoredModelsAreServedAgainOnOpen) {
  {
    auto repo = Open();
    ASSERT_TRUE(repo->Deploy("a", Sha(), Esbm()).ok());
    ASSERT_TRUE(repo->Deploy("a", Sha(), Esbm()).ok());
    ASSERT_TRUE(repo->Deploy("b", Sha(), Esbm()).ok());
  }
  auto repo = Open();
  auto a = repo->Get("a", 0);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->version, 2);
  EXPECT_EQ((*a)->sha256, Sha());
  EXPECT_TRUE(repo->Get("b", 1).ok());
  EXPECT_EQ(repo->List().size(), 3u);
  EXPECT_THAT(log_.str(), HasSubstr("serving model 'a' version 2"));
}

TEST_F(ModelRepositoryTest, ACorruptStoredVersionIsSkippedAndReported) {
  {
    auto repo = Open();
    ASSERT_TRUE(repo->Deploy("a", Sha(), Esbm()).ok());
    ASSERT_TRUE(repo->Deploy("a", Sha(), Esbm()).ok());
  }
  ASSERT_TRUE(WriteFileAtomically(env_.get(), "/models/a/2/model.esbm",
                                  "ESBM not a package")
                  .ok());
  // Junk beside the models is not fatal either.
  ASSERT_TRUE(env_->CreateDirs("/models/a/notaversion").ok());
  ASSERT_TRUE(env_->CreateDirs("/models/bad name").ok());
  auto repo = Open();
  ASSERT_NE(repo, nullptr);
  auto a = repo->Get("a", 0);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->version, 1);
  EXPECT_THAT(log_.str(), HasSubstr("cannot serve version 2 of model 'a'"));
  EXPECT_THAT(log_.str(), HasSubstr("skipping 'bad name'"));
}

TEST_F(ModelRepositoryTest, UnloadRemovesVersionsFromServingAndDisk) {
  auto repo = Open();
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(repo->Deploy("a", Sha(), Esbm()).ok());
  auto held = repo->Get("a", 0);  // A request still using version 3.
  ASSERT_TRUE(held.ok());

  auto latest = repo->Unload("a", 3);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_THAT(latest->removed_versions, ElementsAre(3));
  EXPECT_EQ(latest->serving_version, 2);
  EXPECT_FALSE(env_->FileExists("/models/a/3/model.esbm"));
  EXPECT_EQ((*repo->Get("a", 0))->version, 2);
  EXPECT_EQ((*held)->version, 3);  // Still usable by its holder.
  auto run = (*held)->batcher->Run(testing::DemoImages(0, 1));
  EXPECT_TRUE(run.ok()) << run.status();

  auto missing = repo->Unload("a", 7);
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_THAT(missing.status().message(), HasSubstr("it has 1, 2"));

  auto old = repo->Unload("a", 1);
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->serving_version, 2);

  auto all = repo->Unload("a", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(all->removed_versions, ElementsAre(2));
  EXPECT_EQ(all->serving_version, 0);
  EXPECT_TRUE(absl::IsNotFound(repo->Get("a", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(repo->Unload("a", 0).status()));
  EXPECT_TRUE(repo->List().empty());

  // Gone after a restart too; version numbers are not reused.
  repo.reset();
  repo = Open();
  EXPECT_TRUE(repo->List().empty());
  auto again = repo->Deploy("a", Sha(), Esbm());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->version, 4);
}

}  // namespace
}  // namespace esb::agent
