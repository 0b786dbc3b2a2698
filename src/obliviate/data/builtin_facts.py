"""Real-world QA for the utility side of the built-in data (``tofu_data=builtin``).

Written for this project, in the shape of TOFU's ``real_authors_perturbed`` and
``world_facts_perturbed``: a question, its short true answer, and three false answers of the same
kind (the truth ratio compares them). Facts a small instruct model already knows, so
``model_utility`` measures what unlearning must not damage. Kinds of fact are interleaved, so
that the first few items (``eval.utility_items``) are a mixed sample.
"""

from __future__ import annotations

# (question, answer, [three false answers])
REAL_AUTHORS: list[tuple[str, str, list[str]]] = [
    ("Who wrote the novel 'Pride and Prejudice'?", "Jane Austen", ["Charlotte Brontë", "George Eliot", "Mary Shelley"]),
    ("Who is the author of 'Romeo and Juliet'?", "William Shakespeare", ["Christopher Marlowe", "Ben Jonson", "John Milton"]),
    ("Who wrote 'Nineteen Eighty-Four'?", "George Orwell", ["Aldous Huxley", "H. G. Wells", "Ray Bradbury"]),
    ("Who wrote 'War and Peace'?", "Leo Tolstoy", ["Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev"]),
    ("Who is the author of 'Don Quixote'?", "Miguel de Cervantes", ["Lope de Vega", "Federico García Lorca", "Jorge Luis Borges"]),
    ("Who wrote 'The Old Man and the Sea'?", "Ernest Hemingway", ["John Steinbeck", "William Faulkner", "F. Scott Fitzgerald"]),
    ("Who wrote the Harry Potter books?", "J. K. Rowling", ["Roald Dahl", "C. S. Lewis", "Philip Pullman"]),
    ("Who wrote 'The Lord of the Rings'?", "J. R. R. Tolkien", ["C. S. Lewis", "Terry Pratchett", "George R. R. Martin"]),
    ("Who is the author of 'Crime and Punishment'?", "Fyodor Dostoevsky", ["Leo Tolstoy", "Nikolai Gogol", "Alexander Pushkin"]),
    ("Who wrote 'The Great Gatsby'?", "F. Scott Fitzgerald", ["Ernest Hemingway", "Mark Twain", "Herman Melville"]),
    ("Who wrote 'Adventures of Huckleberry Finn'?", "Mark Twain", ["Herman Melville", "Nathaniel Hawthorne", "Jack London"]),
    ("Who is the author of 'Moby-Dick'?", "Herman Melville", ["Mark Twain", "Edgar Allan Poe", "Walt Whitman"]),
    ("Who wrote 'Frankenstein'?", "Mary Shelley", ["Bram Stoker", "Jane Austen", "Emily Brontë"]),
    ("Who wrote 'Dracula'?", "Bram Stoker", ["Mary Shelley", "Oscar Wilde", "Arthur Conan Doyle"]),
    ("Who created the detective Sherlock Holmes?", "Arthur Conan Doyle", ["Agatha Christie", "Edgar Allan Poe", "Wilkie Collins"]),
    ("Who created the detective Hercule Poirot?", "Agatha Christie", ["Dorothy L. Sayers", "Arthur Conan Doyle", "P. D. James"]),
    ("Who wrote 'One Hundred Years of Solitude'?", "Gabriel García Márquez", ["Mario Vargas Llosa", "Isabel Allende", "Pablo Neruda"]),
    ("Who wrote 'A Tale of Two Cities'?", "Charles Dickens", ["Thomas Hardy", "William Thackeray", "Anthony Trollope"]),
    ("Who is the author of 'Les Misérables'?", "Victor Hugo", ["Alexandre Dumas", "Émile Zola", "Gustave Flaubert"]),
    ("Who wrote 'The Odyssey'?", "Homer", ["Virgil", "Sophocles", "Ovid"]),
    ("Who wrote 'Jane Eyre'?", "Charlotte Brontë", ["Emily Brontë", "Jane Austen", "Elizabeth Gaskell"]),
    ("Who is the author of 'Wuthering Heights'?", "Emily Brontë", ["Charlotte Brontë", "Anne Brontë", "George Eliot"]),
    ("Who wrote 'To Kill a Mockingbird'?", "Harper Lee", ["Toni Morrison", "Truman Capote", "Flannery O'Connor"]),
    ("Who wrote 'The Divine Comedy'?", "Dante Alighieri", ["Giovanni Boccaccio", "Petrarch", "Niccolò Machiavelli"]),
    ("Who wrote 'Alice's Adventures in Wonderland'?", "Lewis Carroll", ["Edward Lear", "J. M. Barrie", "Kenneth Grahame"]),
    ("Who is the author of 'The Hobbit'?", "J. R. R. Tolkien", ["C. S. Lewis", "Roald Dahl", "Lewis Carroll"]),
    ("Who wrote 'Brave New World'?", "Aldous Huxley", ["George Orwell", "H. G. Wells", "Kurt Vonnegut"]),
    ("Who wrote 'The Adventures of Tom Sawyer'?", "Mark Twain", ["Jack London", "Washington Irving", "O. Henry"]),
    ("Who wrote 'Hamlet'?", "William Shakespeare", ["Christopher Marlowe", "John Webster", "Thomas Kyd"]),
    ("Who wrote 'The Time Machine'?", "H. G. Wells", ["Jules Verne", "Arthur C. Clarke", "Isaac Asimov"]),
]  # fmt: skip

WORLD_FACTS: list[tuple[str, str, list[str]]] = [
    ("What is the capital of France?", "Paris", ["Lyon", "Marseille", "Nice"]),
    ("What is the largest planet in our solar system?", "Jupiter", ["Saturn", "Neptune", "Earth"]),
    ("Which planet is known as the Red Planet?", "Mars", ["Venus", "Jupiter", "Mercury"]),
    ("What is the capital of Japan?", "Tokyo", ["Osaka", "Kyoto", "Nagoya"]),
    ("What is the chemical symbol for water?", "H2O", ["CO2", "NaCl", "O2"]),
    ("What is the chemical symbol for gold?", "Au", ["Ag", "Fe", "Gd"]),
    ("What is the capital of Italy?", "Rome", ["Milan", "Naples", "Turin"]),
    ("How many continents are there on Earth?", "Seven", ["Five", "Six", "Eight"]),
    ("How many days are there in a leap year?", "366", ["365", "364", "360"]),
    ("What is the capital of Germany?", "Berlin", ["Munich", "Hamburg", "Frankfurt"]),
    ("What is the largest ocean on Earth?", "The Pacific Ocean", ["The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"]),
    ("What is the longest river in Africa?", "The Nile", ["The Congo", "The Niger", "The Zambezi"]),
    ("What is the capital of Spain?", "Madrid", ["Barcelona", "Seville", "Valencia"]),
    ("Which gas do plants absorb from the air for photosynthesis?", "Carbon dioxide", ["Oxygen", "Nitrogen", "Hydrogen"]),
    ("What is the freezing point of water in degrees Celsius?", "0 degrees Celsius", ["10 degrees Celsius", "32 degrees Celsius", "100 degrees Celsius"]),
    ("What is the capital of the United Kingdom?", "London", ["Manchester", "Edinburgh", "Birmingham"]),
    ("What is the boiling point of water at sea level in degrees Celsius?", "100 degrees Celsius", ["90 degrees Celsius", "80 degrees Celsius", "212 degrees Celsius"]),
    ("Which animal is the largest mammal on Earth?", "The blue whale", ["The African elephant", "The giraffe", "The hippopotamus"]),
    ("What is the capital of Canada?", "Ottawa", ["Toronto", "Vancouver", "Montreal"]),
    ("What is the tallest mountain in the world?", "Mount Everest", ["K2", "Kangchenjunga", "Mont Blanc"]),
    ("In which country are the pyramids of Giza?", "Egypt", ["Mexico", "Sudan", "Peru"]),
    ("What is the capital of Australia?", "Canberra", ["Sydney", "Melbourne", "Perth"]),
    ("What currency is used in Japan?", "The yen", ["The won", "The yuan", "The dollar"]),
    ("Which element has the chemical symbol O?", "Oxygen", ["Osmium", "Gold", "Ozone"]),
    ("What is the capital of Egypt?", "Cairo", ["Alexandria", "Luxor", "Giza"]),
    ("How many legs does a spider have?", "Eight", ["Six", "Ten", "Four"]),
    ("What is the primary language spoken in Brazil?", "Portuguese", ["Spanish", "French", "English"]),
    ("What is the capital of Russia?", "Moscow", ["Saint Petersburg", "Kazan", "Novosibirsk"]),
    ("Which organ pumps blood through the human body?", "The heart", ["The liver", "The lungs", "The kidneys"]),
    ("What is the square root of 81?", "9", ["8", "7", "11"]),
    ("What is the capital of China?", "Beijing", ["Shanghai", "Hong Kong", "Guangzhou"]),
    ("How many minutes are there in an hour?", "60", ["100", "30", "50"]),
    ("Which star is at the centre of our solar system?", "The Sun", ["Sirius", "Polaris", "Alpha Centauri"]),
    ("What is the smallest prime number?", "2", ["1", "3", "0"]),
    ("On which continent is Kenya?", "Africa", ["Asia", "South America", "Europe"]),
    ("What is the hardest natural substance?", "Diamond", ["Granite", "Iron", "Quartz"]),
    ("Which ocean lies between Europe and North America?", "The Atlantic Ocean", ["The Pacific Ocean", "The Indian Ocean", "The Southern Ocean"]),
    ("How many sides does a hexagon have?", "Six", ["Five", "Eight", "Seven"]),
    ("Which city is known as the Big Apple?", "New York City", ["Chicago", "Los Angeles", "Boston"]),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong", ["Buzz Aldrin", "Yuri Gagarin", "John Glenn"]),
]  # fmt: skip
