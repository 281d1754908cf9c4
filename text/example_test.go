package text_test

import (
	"fmt"

	"github.com/deepgo/deepgo/text"
)

func ExampleTrainWordPiece() {
	texts := []string{
		"$AAPL earnings beat expectations https://t.co/x",
		"Earnings fell; $TSLA shares dropped 5.2%",
		"Shares jumped after earnings",
	}
	wp, err := text.TrainWordPiece(texts, text.DefaultWordPieceConfig(60))
	if err != nil {
		panic(err)
	}
	ids := wp.Encode("Earnings jumped https://example.com")
	fmt.Println(wp.Decode(ids))
	b, _ := wp.EncodeBatch([]string{"shares", "earnings fell"}, text.EncodeOptions{AddSpecial: true})
	fmt.Println(b.IDs.Shape(), b.Lengths, b.AttentionMask.Data())
	// Output:
	// earnings jumped [URL]
	// [2 7] [3 7] [1 1 1 0 0 0 0 1 1 1 1 1 1 1]
}
