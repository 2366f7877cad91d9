#include "core/data/tar.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace esb::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream b;
  b << in.rdbuf();
  return b.str();
}

void Put(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(
      std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// A folder of (fake) images in two classes, plus files that are not
// images and hidden ones, which the tar leaves out.
std::string MakeFolder(const std::string& name) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/", name);
  std::filesystem::remove_all(dir);
  Put(dir + "/cat/b.png", "png bytes b");
  Put(dir + "/cat/a.JPG", std::string(700, 'a'));  // Over one block.
  Put(dir + "/cat-x/c.jpeg", "c");
  Put(dir + "/cat/notes.txt", "not an image");
  Put(dir + "/.hidden/d.png", "hidden");
  Put(dir + "/cat/._a.png", "AppleDouble");
  return dir;
}

TEST(TarTest, ListsImageTreesInPathOrder) {
  auto tree = ListImageTree(MakeFolder("tree"));
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_THAT(*tree, ElementsAre("cat/", "cat/a.JPG", "cat/b.png", "cat-x/",
                                 "cat-x/c.jpeg"));
  EXPECT_TRUE(PathLess("a/x", "a-b/y"));
  EXPECT_FALSE(PathLess("a-b/y", "a/x"));
}

TEST(TarTest, WritesDeterministicUstarThatReadsBack) {
  const std::string dir = MakeFolder("pack");
  const std::string tar = absl::StrCat(::testing::TempDir(), "/pack.tar");
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), tar).ok());
  const std::string first = Slurp(tar);
  EXPECT_EQ(first.size() % 10240, 0u);
  // Timestamps and the order files were created in do not matter.
  std::filesystem::last_write_time(
      dir + "/cat/b.png",
      std::filesystem::file_time_type::clock::now() - std::chrono::hours(100));
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), tar).ok());
  EXPECT_EQ(Slurp(tar), first);
  EXPECT_FALSE(std::filesystem::exists(tar + ".tmp"));

  auto file = Env::Default()->NewRandomAccessFile(tar);
  ASSERT_TRUE(file.ok());
  auto members = ListTar(**file);
  ASSERT_TRUE(members.ok()) << members.status();
  std::vector<std::string> paths;
  for (const TarMember& m : *members) paths.push_back(m.path);
  EXPECT_THAT(paths, ElementsAre("./", "./cat/", "./cat/a.JPG", "./cat/b.png",
                                 "./cat-x/", "./cat-x/c.jpeg"));
  const TarMember& a = (*members)[2];
  EXPECT_FALSE(a.is_dir);
  EXPECT_EQ(first.substr(a.offset, a.size), std::string(700, 'a'));
  EXPECT_TRUE((*members)[1].is_dir);
}

TEST(TarTest, MatchesGnuTarByteForByte) {
  const std::string dir = MakeFolder("gnu");
  // GNU tar packs everything; keep only what WriteImageTar packs.
  std::filesystem::remove(dir + "/cat/notes.txt");
  std::filesystem::remove(dir + "/cat/._a.png");
  std::filesystem::remove_all(dir + "/.hidden");
  const std::string ours = absl::StrCat(::testing::TempDir(), "/ours.tar");
  const std::string gnu = absl::StrCat(::testing::TempDir(), "/gnu.tar");
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), ours).ok());
  const std::string command = absl::StrCat(
      "tar --format=ustar --sort=name --mtime=@0 --owner=0 --group=0 "
      "--numeric-owner --mode=a=r,u+w,a+X -C '",
      dir, "' -cf '", gnu, "' .");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  EXPECT_EQ(Slurp(ours), Slurp(gnu));
}

TEST(TarTest, ReadsGnuLongNames) {
  const std::string dir = absl::StrCat(::testing::TempDir(), "/long");
  std::filesystem::remove_all(dir);
  const std::string name = std::string(120, 'n') + ".png";
  Put(dir + "/cls/" + name, "long");
  const std::string tar = absl::StrCat(::testing::TempDir(), "/long.tar");
  const std::string command =
      absl::StrCat("tar --format=gnu -C '", dir, "' -cf '", tar, "' cls");
  ASSERT_EQ(std::system(command.c_str()), 0);
  auto file = Env::Default()->NewRandomAccessFile(tar);
  ASSERT_TRUE(file.ok());
  auto members = ListTar(**file);
  ASSERT_TRUE(members.ok()) << members.status();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[1].path, "cls/" + name);
  EXPECT_EQ((*members)[1].size, 4u);
}

TEST(TarTest, CorruptAndTruncatedArchivesAreNamed) {
  const std::string dir = MakeFolder("bad");
  const std::string tar = absl::StrCat(::testing::TempDir(), "/bad.tar");
  ASSERT_TRUE(WriteImageTar(dir, Env::Default(), tar).ok());
  std::string bytes = Slurp(tar);
  const std::string flipped = absl::StrCat(::testing::TempDir(), "/flip.tar");
  std::string corrupt = bytes;
  corrupt[512 + 10] ^= 1;  // The second header's name.
  Put(flipped, corrupt);
  auto file = Env::Default()->NewRandomAccessFile(flipped);
  ASSERT_TRUE(file.ok());
  auto members = ListTar(**file);
  EXPECT_EQ(members.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(members.status().message()),
              HasSubstr("flip.tar: the tar header at byte 512 has a bad "
                        "checksum"));

  const std::string cut = absl::StrCat(::testing::TempDir(), "/cut.tar");
  Put(cut, bytes.substr(0, 2048 + 100));  // Inside a.JPG's data.
  file = Env::Default()->NewRandomAccessFile(cut);
  ASSERT_TRUE(file.ok());
  members = ListTar(**file);
  EXPECT_EQ(members.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(members.status().message()),
              HasSubstr("the tar is truncated"));
}

}  // namespace
}  // namespace esb::data
