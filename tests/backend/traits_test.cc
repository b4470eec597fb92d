// Methods and traits: receivers are part of a task's identity; trait methods dispatch on
// the value type of the cell the receiver points at.
#include <gtest/gtest.h>

#include "counting.h"
#include "turbine/engine.h"

namespace {

using turbine::Task;
using turbine::Vc;
using turbine::testing::Executions;

struct Shape {
  static constexpr std::string_view kTraitName = "test.Shape";
};

struct Square {
  int64_t side = 0;
  bool operator==(const Square&) const = default;
  static constexpr std::string_view kTypeName = "test.Square";
  static constexpr auto kFields = std::make_tuple(turbine::field("side", &Square::side));
};

struct Circle {
  int64_t radius = 0;
  bool operator==(const Circle&) const = default;
  static constexpr std::string_view kTypeName = "test.Circle";
  static constexpr auto kFields = std::make_tuple(turbine::field("radius", &Circle::radius));
};

struct Triangle {
  int64_t base = 0;
  bool operator==(const Triangle&) const = default;
  static constexpr std::string_view kTypeName = "test.Triangle";
  static constexpr auto kFields = std::make_tuple(turbine::field("base", &Triangle::base));
};

Task<int64_t> SquareAreaImpl(Vc<Square> self) {
  const Square square = co_await self;
  co_return square.side * square.side;
}
inline const turbine::Method<SquareAreaImpl> square_area{"test.Square.area", 1};

Task<int64_t> CircleAreaImpl(Vc<Circle> self) {
  const Circle circle = co_await self;
  co_return 3 * circle.radius * circle.radius;  // a coarse pi keeps the test in integers
}
inline const turbine::Method<CircleAreaImpl> circle_area{"test.Circle.area", 1};

Task<Square> ScaledImpl(Vc<Square> self, int64_t factor) {
  const Square square = co_await self;
  co_return Square{square.side * factor};
}
inline const turbine::Method<ScaledImpl> scaled{"test.Square.scaled", 1};

inline const turbine::TraitMethod<Shape, int64_t> shape_area{"test.Shape.area", 1};
inline const turbine::TraitImpl square_is_a_shape{shape_area, square_area};
inline const turbine::TraitImpl circle_is_a_shape{shape_area, circle_area};

Task<Vc<Shape>> MakeShapeImpl(std::string kind, int64_t size) {
  if (kind == "square") co_return turbine::Cell(Square{size});
  if (kind == "circle") co_return turbine::Cell(Circle{size});
  co_return turbine::Cell(Triangle{size});
}
inline const turbine::Function<MakeShapeImpl> make_shape{"test.make_shape", 1};

TEST(Traits, DispatchOnTheCellsValueType) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  EXPECT_EQ(*engine.Read(shape_area(make_shape("square", 3))), 9);
  EXPECT_EQ(*engine.Read(shape_area(make_shape("circle", 2))), 12);
  EXPECT_EQ(Executions(engine, "test.Square.area"), 1u);
  EXPECT_EQ(Executions(engine, "test.Circle.area"), 1u);

  // Memoized per receiver: the same shape again executes nothing new.
  EXPECT_EQ(*engine.Read(shape_area(make_shape("square", 3))), 9);
  EXPECT_EQ(Executions(engine, "test.Square.area"), 1u);
}

TEST(Traits, ATypeWithoutAnImplementationIsAnError) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  absl::StatusOr<int64_t> area = engine.Read(shape_area(make_shape("triangle", 3)));
  ASSERT_FALSE(area.ok());
  EXPECT_NE(area.status().message().find("test.Triangle"), std::string::npos);
  EXPECT_NE(area.status().message().find("test.Shape.area"), std::string::npos);
}

TEST(Methods, TakeTheirReceiverAndArguments) {
  turbine::Engine engine;
  turbine::Engine::Scope scope(engine);
  turbine::Vc<Square> base = scaled(turbine::Vc<Square>(), 1);  // empty receiver: an error
  EXPECT_FALSE(engine.Read(base).ok());

  auto square = engine.Resolve(make_shape("square", 2).raw());
  ASSERT_TRUE(square.ok());
  const Vc<Square> two(*square);
  absl::StatusOr<Square> six = engine.Read(scaled(two, 3));
  ASSERT_TRUE(six.ok());
  EXPECT_EQ(six->side, 6);
  EXPECT_EQ(*engine.Read(square_area(scaled(two, 3))), 36);
  EXPECT_EQ(*engine.Read(square_area(scaled(two, 4))), 64);
  EXPECT_EQ(Executions(engine, "test.Square.scaled"), 3u);  // receivers: none, 2x3, 2x4
}

}  // namespace
