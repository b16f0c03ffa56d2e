package service

import "time"

// beijing is China Standard Time: UTC+8 all year, so no tz database is
// needed. Due dates, "same day" and report labels are in Beijing time.
var beijing = time.FixedZone("CST", 8*3600)
